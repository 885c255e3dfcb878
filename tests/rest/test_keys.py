"""Named keys (issue 24): `lambdallm keys add|list|revoke`, secrets kept only as peppered hashes, a key's secret
opening the API under its id, revocation without a restart, and the plain keys of LAMBDALLM_REST_API_KEYS beside."""

import json
import logging
import os
import stat

import httpx
import pytest

from lambdallm import cli
from lambdallm.rest import keyring
from lambdallm.rest.keyring import KeyRing
from lambdallm.rest.keys import Limits, add_key, read_keys
from lambdallm.settings import RestSettings, SettingsError
from tests.fakes.stack import API_KEY, running_rest
from tests.rest.test_query import VALID, assert_problem

PEPPER = "test-pepper-0123456789abcdef"


@pytest.fixture
def keys_env(tmp_path, monkeypatch):
    """The `lambdallm keys` commands pointed at a keys file and a pepper file in tmp_path."""
    monkeypatch.setenv("LAMBDALLM_REST_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("LAMBDALLM_REST_KEYS_PEPPER_FILE", str(tmp_path / "pepper"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def keys(capsys, *args):
    status = cli.main(["keys", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_add_prints_the_secret_once_and_keeps_only_its_hash(keys_env, capsys):
    status, secret, err = keys(capsys, "add", "team-a", "--rpm", "60", "--tpm", "1000", "--streams", "2")

    secret = secret.strip()
    assert status == 0, err
    assert secret.startswith("llm_") and len(secret) >= 4 + 43  # 32 random bytes
    assert "shown this once" in err
    stored = (keys_env / "keys.json").read_text()
    assert secret not in stored
    assert read_keys(keys_env / "keys.json")[0].limits == Limits(60, 1000, 2)
    for made in ("keys.json", "pepper"):  # secrets both: readable by their owner only
        assert stat.S_IMODE(os.stat(keys_env / made).st_mode) == 0o600
    status, listed, _ = keys(capsys, "list")
    assert status == 0
    assert listed.splitlines()[0].split() == ["id", "created", "revoked", "rpm", "tpm", "streams"]
    assert listed.splitlines()[1].split()[0] == "team-a" and listed.splitlines()[1].split()[-3:] == ["60", "1000", "2"]
    assert secret not in listed
    assert json.loads(stored)["keys"][0]["hash"] not in listed


def test_an_id_is_taken_once_and_must_be_a_label(keys_env, capsys):
    assert keys(capsys, "add", "team-a")[0] == 0
    status, _, err = keys(capsys, "add", "team-a")
    assert status == 1 and "is taken" in err
    for bad in ("Team A", "api-key-1", "x" * 64):
        status, _, err = keys(capsys, "add", bad)
        assert status == 1 and "key id" in err


def test_the_keys_commands_need_a_keys_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LAMBDALLM_REST_KEYS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    status, _, err = keys(capsys, "list")
    assert status == 2 and "keys_file is not set" in err


def test_a_keys_file_without_a_pepper_stops_the_tier_naming_it(tmp_path):
    with pytest.raises(SettingsError, match="keys_pepper"):
        KeyRing(RestSettings(keys_file=str(tmp_path / "keys.json")), ())
    with pytest.raises(SettingsError, match="keys_pepper: the pepper must be at least 16"):
        KeyRing(RestSettings(keys_file=str(tmp_path / "keys.json"), keys_pepper="short"), ())


@pytest.mark.parametrize(
    "text", ["not json", '{"keys": [{"id": "a"}]}', '{"keys": [{"id": "a", "hash": "00", "limits": {}}]}']
)
def test_a_bad_keys_file_stops_the_tier_naming_keys_file(tmp_path, text):
    (tmp_path / "keys.json").write_text(text)
    with pytest.raises(SettingsError, match="keys_file"):
        KeyRing(RestSettings(keys_file=str(tmp_path / "keys.json"), keys_pepper=PEPPER), ())


def named(tmp_path, **limits):
    """A keys file with one key, team-a, under `limits`; returns (settings overrides, its secret)."""
    path = tmp_path / "keys.json"
    secret = add_key(path, PEPPER.encode(), "team-a", Limits(**limits))
    return {"keys_file": str(path), "keys_pepper": PEPPER}, secret


async def test_a_named_key_and_a_plain_key_both_open_the_api(proxy, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    overrides, secret = named(tmp_path)
    async with running_rest(proxy.target, **overrides) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        for key in (secret, API_KEY):
            response = await client.post("/query", json=VALID, headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 200, response.text
        wrong = await client.post("/query", json=VALID, headers={"Authorization": f"Bearer {secret[:-1]}x"})
        assert_problem(wrong, 401, "the API key is not valid")
        scraped = (await client.get("/metrics")).text

    assert 'key="team-a"' in scraped and 'key="api-key-1"' in scraped
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert secret not in logged and secret not in scraped


async def test_a_named_key_alone_opens_the_api(proxy, tmp_path):
    overrides, secret = named(tmp_path)
    async with running_rest(proxy.target, api_keys="", **overrides) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/query", json=VALID, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200, response.text


async def test_a_revoked_key_is_refused_without_a_restart(proxy, tmp_path, monkeypatch, capsys):
    overrides, secret = named(tmp_path)
    monkeypatch.setattr(keyring, "RELOAD_CHECK_S", 0.0)
    monkeypatch.setenv("LAMBDALLM_REST_KEYS_FILE", overrides["keys_file"])
    monkeypatch.setenv("LAMBDALLM_REST_KEYS_PEPPER", PEPPER)
    headers = {"Authorization": f"Bearer {secret}"}
    async with running_rest(proxy.target, **overrides) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        assert (await client.post("/query", json=VALID, headers=headers)).status_code == 200
        assert keys(capsys, "revoke", "team-a")[0] == 0
        assert_problem(await client.post("/query", json=VALID, headers=headers), 401, "the API key is not valid")
        _, listed, _ = keys(capsys, "list")
    assert listed.splitlines()[1].split()[2] != "-"  # the revocation's time


async def test_auth_none_opens_the_api_even_with_a_keys_file(proxy, tmp_path):
    overrides, _ = named(tmp_path)
    async with (
        running_rest(proxy.target, auth="none", keys_file=overrides["keys_file"]) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        response = await client.post("/query", json=VALID)
    assert response.status_code == 200, response.text

"""Settings: defaults, file, environment; a bad value stops a tier at start naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdallm import settings
from lambdallm.settings import CloudSettings, ProxySettings, RestSettings, SettingsError, load


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "CONFIG_DIRS", (tmp_path / "config",))

    proxy = load(ProxySettings, "proxy", environ={})

    assert proxy.port == 50051
    assert proxy.backend_url == "http://127.0.0.1:3000"


@pytest.mark.parametrize("by", ["--config", "LAMBDALLM_PROXY_CONFIG"])
def test_a_named_config_file_that_is_missing_stops_the_tier(tmp_path: Path, by: str) -> None:
    missing = tmp_path / "typo.toml"
    flag, environ = (missing, {}) if by == "--config" else (None, {by: str(missing)})

    with pytest.raises(SettingsError, match=f"{missing}.*no such config file.*{by}"):
        load(ProxySettings, "proxy", flag, environ=environ)


def test_a_missing_config_file_from_the_command_line_exits_2_naming_it(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", "proxy", "--config", "nope.toml"],
        env={"PATH": "", **_pythonpath()},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a tier that starts on defaults instead would serve until killed
    )

    assert result.returncode == 2
    assert "nope.toml: no such config file" in result.stderr


def test_config_is_found_beside_the_package_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config").mkdir()
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "proxy.toml").write_text("port = 50999\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings, "CONFIG_DIRS", (Path("config"), shipped))

    assert load(ProxySettings, "proxy", environ={}).port == 50999
    (tmp_path / "config" / "proxy.toml").write_text("port = 50998\n")
    assert load(ProxySettings, "proxy", environ={}).port == 50998


def test_the_repository_config_dir_is_found_by_its_absolute_path() -> None:
    assert settings.CONFIG_DIRS[-1] == Path(__file__).resolve().parents[1] / "config"
    assert (settings.CONFIG_DIRS[-1] / "proxy.toml").is_file()


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rest.toml"
    path.write_text('port = 9000\ngrpc_target = "127.0.0.1:6000"\n')

    rest = load(RestSettings, "rest", path, environ={"LAMBDALLM_REST_PORT": "9100"})

    assert (rest.port, rest.grpc_target) == (9100, "127.0.0.1:6000")


def test_the_shipped_config_files_hold_the_defaults() -> None:
    from client_app.config import ClientSettings

    root = Path(__file__).resolve().parents[1] / "config"
    for cls, tier in ((CloudSettings, "local-cloud"), (ProxySettings, "proxy"), (RestSettings, "rest")):
        assert load(cls, tier, root / f"{tier}.toml", environ={}) == cls()
    assert load(ClientSettings, "bedrest", root / "bedrest.toml", environ={}) == ClientSettings()


@pytest.mark.parametrize(
    ("text", "environ", "key"),
    [
        ("", {"LAMBDALLM_PROXY_PORT": "fifty"}, "LAMBDALLM_PROXY_PORT"),
        ("", {"LAMBDALLM_PROXY_PORT": "70000"}, "LAMBDALLM_PROXY_PORT"),
        ("port = 1.5\n", {}, "port"),
        ("colour = 'red'\n", {}, "colour"),
        ("grace_s = -1\n", {}, "grace_s"),
        ("port = \n", {}, "TOML"),
        ("backend_timeout_s = nan\n", {}, "backend_timeout_s"),
        ("grace_s = inf\n", {}, "grace_s"),
        ("", {"LAMBDALLM_PROXY_GRACE_S": "NaN"}, "LAMBDALLM_PROXY_GRACE_S"),
        ("", {"LAMBDALLM_PROXY_CONNECT_TIMEOUT_S": "-inf"}, "LAMBDALLM_PROXY_CONNECT_TIMEOUT_S"),
    ],
)
def test_a_bad_value_names_its_key(tmp_path: Path, text: str, environ: dict[str, str], key: str) -> None:
    path = tmp_path / "proxy.toml"
    path.write_text(text)

    with pytest.raises(SettingsError, match=key):
        load(ProxySettings, "proxy", path, environ=environ)


def test_a_choice_outside_the_list_is_refused() -> None:
    with pytest.raises(SettingsError, match="LAMBDALLM_LOCAL_CLOUD_ENGINE"):
        load(CloudSettings, "local-cloud", environ={"LAMBDALLM_LOCAL_CLOUD_ENGINE": "gpt"})


def test_a_tier_with_a_bad_setting_stops_at_start_with_the_key(tmp_path: Path) -> None:
    env = {"LAMBDALLM_REST_DEADLINE_S": "soon", "PATH": "", **_pythonpath()}
    result = subprocess.run(
        [sys.executable, "-m", "lambdallm", "rest"], env=env, cwd=tmp_path, capture_output=True, text=True
    )

    assert result.returncode == 2
    assert "LAMBDALLM_REST_DEADLINE_S" in result.stderr
    assert "Traceback" not in result.stderr


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}

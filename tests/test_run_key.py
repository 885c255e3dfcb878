"""`lambdallm up` makes an API key for its run only when the REST tier's configuration asks for keys and has none."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lambdallm import commands, settings, stack


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(settings, "CONFIG_DIRS", (tmp_path / "config",))
    for name in ("LAMBDALLM_REST_AUTH", "LAMBDALLM_REST_API_KEYS", "LAMBDALLM_REST_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_up_makes_a_key_for_the_run_readable_by_its_owner_only(no_config: Path) -> None:
    key = commands.run_key()

    assert key is not None and len(key) >= 40
    written = no_config / commands.RUN_KEY_FILE
    assert written.read_text() == key + "\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert commands.run_key() != key  # each run its own


@pytest.mark.parametrize(("variable", "value"), [("LAMBDALLM_REST_API_KEYS", "mine"), ("LAMBDALLM_REST_AUTH", "none")])
def test_up_keeps_the_operators_keys_or_open_api(
    no_config: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    assert commands.run_key() is None
    assert not (no_config / commands.RUN_KEY_FILE).exists()


def test_a_stack_hands_its_key_to_the_rest_tier() -> None:
    chain = stack.Stack(stack.Ports.any())

    assert chain.environment()["LAMBDALLM_REST_API_KEYS"] == chain.api_key
    assert chain.auth_headers == {"Authorization": f"Bearer {chain.api_key}"}
    assert chain.api_key not in repr(chain)

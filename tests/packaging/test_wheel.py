"""A wheel built from the checkout and installed into a fresh venv runs the REST tier from its own specs and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdallm.tier import ANNOUNCE_FILE, wait_for_announcement

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel built from the checkout; it sees this venv's dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    # sdist first, then the wheel from the unpacked sdist: what a user gets from an index.
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), str(REPO)]
    subprocess.run(build, check=True, capture_output=True)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = next((work / "dist").glob("lambdallm-*.whl"))
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=_clean_env())  # PYTHONPATH would hide it
    # The dependencies come from this venv, appended after the new venv's own site-packages: plain path lines
    # in a .pth file, so the editable lambdallm of this venv (its own .pth) is never activated there.
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies-of-the-test-venv.pth").write_text("\n".join(paths) + "\n")
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH (which points at the checkout) or any tier setting."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LAMBDALLM_")}
    return env | extra


def test_the_installed_package_reads_its_shipped_spec_and_config(venv: Path, tmp_path: Path) -> None:
    probe = (
        "from lambdallm.rest.app import SPEC; from lambdallm import settings;"
        "print(SPEC); print(settings.config_file('rest', None, None, ''))"
    )
    out = subprocess.check_output([venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=_clean_env(), text=True)

    spec, config = (Path(line) for line in out.splitlines())
    assert spec.is_file() and spec.is_relative_to(venv), spec
    assert config.is_file() and config.is_relative_to(venv), config
    assert spec.read_bytes() == (REPO / "specs" / "openapi.yaml").read_bytes()


@pytest.fixture
def rest_from_wheel(venv: Path, tmp_path: Path) -> Iterator[str]:
    """`lambdallm rest` of the installed wheel on a free port, started outside the checkout; yields its URL."""
    announced = tmp_path / "rest.json"
    # The REST tier refuses to start without an API key (docs/configuration.md, "API keys") or the proxy's token.
    env = _clean_env(
        LAMBDALLM_REST_PORT="0",
        LAMBDALLM_REST_API_KEYS="wheel-test-key",
        LAMBDALLM_REST_GRPC_TOKEN="wheel-test-proxy-token",
        **{ANNOUNCE_FILE: str(announced)},
    )
    process = subprocess.Popen(
        [venv / "bin" / "lambdallm", "rest"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        try:
            port = wait_for_announcement(announced, process, timeout_s=60)["rest"]
        except Exception:
            process.kill()
            print(process.communicate()[1])
            raise
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_wheel_starts_the_rest_tier_and_answers_health(rest_from_wheel: str) -> None:
    with urllib.request.urlopen(f"{rest_from_wheel}/health", timeout=10) as answer:
        assert answer.status == 200
    with urllib.request.urlopen(f"{rest_from_wheel}/openapi.json", timeout=10) as answer:
        assert "/query" in json.load(answer)["paths"]
    for page in ("/playground", "/playground/playground.js"):  # the page's files ship in the wheel
        with urllib.request.urlopen(f"{rest_from_wheel}{page}", timeout=10) as answer:
            assert answer.status == 200 and answer.read()

"""A real browser for the tests: Debian's headless chromium driven by selenium, installed with apt-get when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
# Headless, as root (no sandbox), and quiet: no first-run pages, no calls home, no updates, no sync.
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Where the browser tests leave their screenshots (the repository's build/, ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts" / "playground"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def ensure_chromium() -> str:
    """The path of chromium, with chromedriver beside it: Debian's packages, installed with apt-get when missing
    (the way `make images` installs podman). Skips the test where they cannot be installed: not root, no apt-get,
    or apt-get failed (its error is the reason)."""
    if chromium() and CHROMEDRIVER.exists():
        return str(chromium())
    missing = " and ".join(PACKAGES)
    if shutil.which("apt-get") is None:
        pytest.skip(f"the browser tests need {missing} (Debian's packages) and there is no apt-get to install them")
    if os.geteuid() != 0:
        pytest.skip(f"the browser tests need {missing}: run them as root once to apt-get install them, or install them")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    found = chromium()
    if not found or not CHROMEDRIVER.exists():
        pytest.fail(f"apt-get installed {missing}, yet chromium or {CHROMEDRIVER} is not there")
    return found


@contextmanager
def headless_chromium(binary: str, profile: Path, width: int = 1280, height: int = 900) -> Iterator[object]:
    """A selenium driver of a fresh headless chromium (its own profile in `profile`), keeping the console's log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (*ARGUMENTS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: object, name: str) -> Path:
    """Save what the browser shows as build/test-artifacts/playground/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path

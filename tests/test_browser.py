"""The browser tests' set-up installs chromium when it can, and otherwise skips them saying why."""

import pytest

from tests import browser


def test_without_chromium_or_apt_get_the_browser_tests_are_skipped_naming_what_is_missing(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)

    with pytest.raises(pytest.skip.Exception, match=r"chromium and chromium-driver .* no apt-get"):
        browser.ensure_chromium()


def test_without_root_the_browser_tests_are_skipped_saying_how_to_install(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)

    with pytest.raises(pytest.skip.Exception, match="run them as root once"):
        browser.ensure_chromium()


def test_a_failing_apt_get_skips_with_its_error(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    failed = browser.subprocess.CompletedProcess([], 100, "", "E: Unable to locate package chromium")
    monkeypatch.setattr(browser.subprocess, "run", lambda *args, **kwargs: failed)

    with pytest.raises(pytest.skip.Exception, match=r"apt-get update -qq failed \(100\): E: Unable to locate"):
        browser.ensure_chromium()

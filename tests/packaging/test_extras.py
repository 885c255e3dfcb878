"""A tier whose pyproject extra is not installed stops at start and names the extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("command", "module", "extra"), [("rest", "connexion", "rest"), ("proxy", "aiohttp", "proxy")])
def test_a_missing_dependency_names_the_extra(command: str, module: str, extra: str) -> None:
    # None in sys.modules makes `import module` raise ModuleNotFoundError, as in an install without the extra.
    run = f"import sys; sys.modules[{module!r}] = None; from lambdallm.cli import main; sys.exit(main([{command!r}]))"
    result = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=60)

    assert result.returncode == 3, result.stderr
    assert f"{module} is missing; install it with pip install 'lambdallm[{extra}]'" in result.stderr

"""Each tier imports only what its pyproject extra installs; without its extra, it names the extra to install."""

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


# Modules outside each tier's extra (and outside what that extra's packages bring): the tier imports without them.
LEFT_OUT = {
    "lambdallm.rest.app": ["aiohttp", "grpc_reflection", "boto3", "llama_cpp", "prompt_toolkit"],
    "lambdallm.proxy.server": ["connexion", "starlette", "uvicorn", "yaml", "boto3", "llama_cpp", "prompt_toolkit"],
    "lambdallm.local_cloud.server": ["connexion", "aiohttp", "grpc", "prompt_toolkit"],
}


@pytest.mark.parametrize("module", sorted(LEFT_OUT))
def test_a_tier_imports_without_the_other_tiers_dependencies(module: str) -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in LEFT_OUT[module])
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; {blocked}; import {module}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr

"""Install the load generators and report libraries the bench needs, if they are missing."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

# Module name -> pip requirement; the same pins as the `bench` extra in pyproject.toml.
PYTHON_PACKAGES = {
    "fastapi": "fastapi>=0.110,<1",
    "locust": "locust>=2.30,<3",
    "matplotlib": "matplotlib>=3.8,<4",
    "tqdm": "tqdm>=4.66,<5",
}


class ToolError(RuntimeError):
    """A tool the bench needs is missing and could not be installed."""


def ensure_tools() -> None:
    """Make wrk (Debian's package) and the Python packages of the `bench` extra available."""
    missing = [req for module, req in PYTHON_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(f"bench: installing {', '.join(missing)} into {sys.prefix}", file=sys.stderr, flush=True)
        _run([sys.executable, "-m", "pip", "install", "--quiet", *missing])
    if shutil.which("wrk") is None:
        print("bench: installing wrk with apt-get", file=sys.stderr, flush=True)
        if shutil.which("apt-get") is None:
            raise ToolError("wrk is not on PATH and there is no apt-get to install it; install wrk 4.x")
        _run(["apt-get", "update", "-qq"])
        _run(["apt-get", "install", "-y", "-qq", "wrk"])
        if shutil.which("wrk") is None:
            raise ToolError("apt-get installed wrk but it is not on PATH")


def _run(command: list[str]) -> None:
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ToolError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

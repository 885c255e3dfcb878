"""Each tier imports only what its pyproject extra installs; without its extra, it names the extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# The modules each extra's install runs: the tier's server and what it loads by name (handlers, the Lambda).
TIER_MODULES = {
    "rest": ["lambdallm.cli", "lambdallm.rest.app", "handlers.query", "handlers.health"],
    "proxy": ["lambdallm.cli", "lambdallm.proxy.server", "lambdallm.probe"],
    "local-cloud": [
        "lambdallm.cli",
        "lambdallm.local_cloud.server",
        "lambdallm.local_cloud.llama_engine",
        "lambdallm.local_cloud.models",
        "llm_lambda.handler",
    ],
    "client": ["client_app.cli"],
}
# Import the modules with every installed distribution outside `allowed` hidden, as in an install of the extra
# alone: optional imports (brotli, watchfiles...) fall back as they would there, required ones fail.
IMPORT_WITHIN = """
import importlib, importlib.machinery, json, re, sys
from importlib import metadata
allowed = set(json.loads(sys.argv[1]))
owners = metadata.packages_distributions()

class PathFinderWithinTheExtra:
    @staticmethod
    def find_spec(name, path=None, target=None):
        dists = owners.get(name.partition(".")[0], [])
        if dists and not allowed & {re.sub(r"[-_.]+", "-", d).lower() for d in dists}:
            return None  # not installed, as far as this process can tell
        return importlib.machinery.PathFinder.find_spec(name, path, target)

    @staticmethod
    def invalidate_caches():
        importlib.machinery.PathFinder.invalidate_caches()

sys.meta_path[:] = [PathFinderWithinTheExtra if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
for module in sys.argv[2:]:
    importlib.import_module(module)
"""


def _requirements(extra: str) -> list[Requirement]:
    """The project's own dependencies and `extra`'s, with its references to its other extras expanded."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"][extra]]
    own = [r for r in found if canonicalize_name(r.name) == "lambdallm"]
    return [r for r in found if r not in own] + [r for o in own for extra in o.extras for r in _requirements(extra)]


def _installed_closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution that installing `requirements` brings, read from what is installed here."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": e}) for e in {"", *requirement.extras}):
                needed.marker = None
                todo.append(needed)
    return {name for name, _ in seen}


@pytest.mark.parametrize("extra", sorted(TIER_MODULES))
def test_each_tier_imports_with_only_what_its_extra_installs(extra: str) -> None:
    allowed = sorted(_installed_closure(_requirements(extra)) | {"lambdallm"})
    run = [sys.executable, "-c", IMPORT_WITHIN, json.dumps(allowed), *TIER_MODULES[extra]]

    result = subprocess.run(run, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("command", "module", "extra"), [("rest", "connexion", "rest"), ("proxy", "httptools", "proxy")]
)
def test_a_missing_dependency_names_the_extra(command: str, module: str, extra: str) -> None:
    # None in sys.modules makes `import module` raise ModuleNotFoundError, as in an install without the extra.
    run = f"import sys; sys.modules[{module!r}] = None; from lambdallm.cli import main; sys.exit(main([{command!r}]))"
    result = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=60)

    assert result.returncode == 3, result.stderr
    assert f"{module} is missing; install it with pip install 'lambdallm[{extra}]'" in result.stderr

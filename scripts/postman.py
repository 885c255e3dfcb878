"""Build the Postman collection of specs/openapi.yaml, and install the npm tools that make and run it.

`python scripts/postman.py` writes build/postman/lambdallm.postman_collection.json (`make postman`). The converter is
openapi-to-postmanv2, the one Postman's own import uses; each request's body is the spec's example. On top of what it
makes, this script adds one request per further named request example (the converter makes one per operation, from
the first example), sent with the example's `x-accept` header when it has one (the streamed request), and declares
the two collection variables a user fills in: `baseUrl` and `bearerToken` (the API key). docs/postman.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "openapi.yaml"
OUTPUT = ROOT / "build" / "postman" / "lambdallm.postman_collection.json"
# Pinned, installed from the npm registry on first use (as tox's lint env installs buf).
PACKAGES = ("openapi-to-postmanv2@6.3.3", "newman@6.2.2")
TOOLS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lambdallm" / "npm-postman"
# Each body is the spec's example, not "<integer>" placeholders.
CONVERTER_OPTIONS = "parametersResolution=Example"
KEY_VARIABLE = "bearerToken"
URL_VARIABLE = "baseUrl"


def tool(name: str, tools: Path = TOOLS) -> Path:
    """The path of an installed npm tool's command (`openapi2postmanv2`, `newman`), installing both when missing."""
    command = tools / "node_modules" / ".bin" / name
    stamp = tools / "installed.txt"
    if not command.exists() or not stamp.exists() or stamp.read_text() != "\n".join(PACKAGES):
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to build and run the Postman collection (Debian: apt-get install npm)")
        tools.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--no-save", "--silent", "--prefix", str(tools), *PACKAGES], check=True)
        stamp.write_text("\n".join(PACKAGES))
    return command


def build(spec: Path = SPEC, tools: Path = TOOLS) -> dict[str, Any]:
    """The collection of `spec`: the converter's, with a request for every named request example and the URL and key
    as collection variables."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "collection.json"
        subprocess.run(
            [str(tool("openapi2postmanv2", tools)), "-s", str(spec), "-o", str(out), "-O", CONVERTER_OPTIONS],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        collection: dict[str, Any] = json.loads(out.read_text())
    document = yaml.safe_load(spec.read_text())
    for item in _requests(collection["item"]):
        _add_example_requests(item, document)
    variables = [v for v in collection.get("variable", []) if v.get("key") != KEY_VARIABLE]
    variables.append({"key": KEY_VARIABLE, "value": "", "type": "string", "description": "An API key of the REST tier"})
    collection["variable"] = variables
    return collection


def _requests(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every list of items that holds a request (folders nest them), to add siblings to."""
    found: list[list[dict[str, Any]]] = []
    if any("request" in item for item in items):
        found.append(items)
    for item in items:
        found += _requests(item.get("item", []))
    return found


def _add_example_requests(items: list[dict[str, Any]], document: dict[str, Any]) -> None:
    """After each converted request, one copy per further named example of its operation's JSON body."""
    for item in list(items):
        request = item.get("request")
        if request is None:
            continue
        operation = _operation(document, request)
        content = (operation or {}).get("requestBody", {}).get("content", {}).get("application/json", {})
        examples = list(content.get("examples", {}).values())
        position = items.index(item)
        for number, example in enumerate(examples):
            target = item if number == 0 else copy.deepcopy(item)
            target["name"] = example.get("summary") or target["name"]
            body = target["request"].setdefault("body", {"mode": "raw"})
            body["raw"] = json.dumps(example["value"], indent=2, ensure_ascii=False)
            if "x-accept" in example:
                for header in target["request"]["header"]:
                    if header["key"].lower() == "accept":
                        header["value"] = example["x-accept"]
            if number:  # a copy: its saved responses and id are the first one's
                target.pop("response", None)
                target.pop("id", None)
                position += 1
                items.insert(position, target)


def _operation(document: dict[str, Any], request: dict[str, Any]) -> dict[str, Any] | None:
    """The spec's operation of a converted request, by its method and path."""
    path = "/" + "/".join(request["url"]["path"])
    result = document["paths"].get(path, {}).get(request["method"].lower())
    return result if isinstance(result, dict) else None


def main() -> None:
    """Write the collection to `--out` (build/postman/ by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    collection = build(args.spec)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(collection, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""The Postman collection built from specs/openapi.yaml (scripts/postman.py) runs with newman against the running
chain as it is built: every request answers 2xx, given only the base URL and the API key."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postman.py"


@pytest.fixture(scope="module")
def postman() -> ModuleType:
    """scripts/postman.py, with its npm tools installed (into ~/.cache/lambdallm/ on first use)."""
    spec = importlib.util.spec_from_file_location("postman_build", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.tool("newman")
    return module


def _request_names(items: list[dict[str, Any]]) -> list[str]:
    names = []
    for item in items:
        names += _request_names(item["item"]) if "item" in item else [item["name"]]
    return names


def test_the_collection_declares_the_url_and_the_key_and_a_request_per_example(postman: ModuleType) -> None:
    collection = postman.build()
    variables = {v["key"] for v in collection["variable"]}
    assert {postman.URL_VARIABLE, postman.KEY_VARIABLE} <= variables
    assert collection["auth"]["bearer"][0]["value"] == "{{" + postman.KEY_VARIABLE + "}}"
    names = _request_names(collection["item"])
    assert {"Continue a prompt", "Answer a conversation, with a system text"} <= set(names)
    assert any("text/event-stream" in name for name in names)
    assert len(names) == 6  # three examples of POST /query, GET /models, /health, /ready


def test_every_request_of_the_collection_succeeds_with_only_the_url_and_key(
    postman: ModuleType, instant_chain: Stack, tmp_path: Path
) -> None:
    collection = postman.build()
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    command = [
        str(postman.tool("newman")), "run", str(tmp_path / "collection.json"),
        "--env-var", f"{postman.URL_VARIABLE}={instant_chain.rest_url}",
        "--env-var", f"{postman.KEY_VARIABLE}={instant_chain.api_key}",
        "--reporters", "cli,json", "--reporter-json-export", str(tmp_path / "report.json"),
        "--timeout-request", "30000", "--color", "off", "--disable-unicode",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    answers = {e["item"]["name"]: e["response"]["code"] for e in report["run"]["executions"]}
    assert sorted(answers) == sorted(_request_names(collection["item"]))
    assert all(200 <= code < 300 for code in answers.values()), answers

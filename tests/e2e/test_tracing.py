"""One trace from the client to the model: the whole chain with the JSON-lines exporter, a request carrying a W3C
`traceparent`, and every tier's spans in that trace, one tree across the processes (docs/tracing.md)."""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lambdallm.stack import Ports, Stack

pytestmark = [pytest.mark.e2e]
SERVICES = {"lambdallm-rest", "lambdallm-proxy", "lambdallm-apigateway", "lambdallm-lambda", "lambdallm-bedrock"}
PROMPT = "a secret prompt 7f3a"


@pytest.fixture(scope="module")
def traced_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    spans = tmp_path_factory.mktemp("traces") / "spans.jsonl"
    env = {"OTEL_BSP_SCHEDULE_DELAY": "50"}  # spans reach the file within 50 ms, not the SDK's 5 s
    for tier in ("REST", "PROXY", "LOCAL_CLOUD"):
        env |= {f"LAMBDALLM_{tier}_TRACE_EXPORTER": "file", f"LAMBDALLM_{tier}_TRACE_FILE": str(spans)}
    log = io.StringIO()
    stack = Stack(Ports.any(), engine="instant", log=log, extra_env=env)
    try:
        with stack:
            yield stack, spans
    except Exception:
        print(log.getvalue())
        raise


def spans_of(file: Path, trace_id: str, services: set[str], timeout: float = 15.0) -> list[dict[str, Any]]:
    """The spans of the trace once every service has written its own (the exporters flush every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = file.read_text().splitlines() if file.exists() else []
        spans = [span for span in map(json.loads, lines) if span["context"]["trace_id"] == "0x" + trace_id]
        if {s["resource"]["attributes"]["service.name"] for s in spans} >= services or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def traced(chain: Stack, body: dict[str, Any], stream: bool) -> tuple[str, str, httpx.Response]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    headers = chain.auth_headers | {"traceparent": f"00-{trace_id}-{parent}-01"}
    headers |= {"Accept": "text/event-stream"} if stream else {}
    response = httpx.post(f"{chain.rest_url}/query", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return trace_id, parent, response


@pytest.mark.parametrize("stream", [False, True])
def test_every_tier_s_spans_share_the_client_s_trace_in_one_tree(
    traced_chain: tuple[Stack, Path], stream: bool
) -> None:
    chain, file = traced_chain
    trace_id, parent, response = traced(chain, {"prompt": PROMPT, "max_tokens": 4}, stream)

    spans = spans_of(file, trace_id, SERVICES)
    by_service = {s["resource"]["attributes"]["service.name"] for s in spans}
    assert by_service == SERVICES
    ids = {s["context"]["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] not in ids]
    assert [(s["name"], s["parent_id"]) for s in roots] == [("POST /query", "0x" + parent)]  # the REST tier's
    names = {s["name"] for s in spans}
    assert {"/llm.v1.LlmService/GenerateTextStream" if stream else "/llm.v1.LlmService/GenerateText"} <= names
    assert {"POST /query/stream", "QueryStreamFunction", "model.generate", "model.slot_wait"} <= names
    assert {"model.prompt", "model.decode"} <= names
    by_id = {s["context"]["span_id"]: s for s in spans}
    parents = {
        s["name"]: by_id[s["parent_id"]]["resource"]["attributes"]["service.name"]
        for s in spans
        if s["parent_id"] in by_id
    }
    assert parents["POST /query/stream"] == "lambdallm-proxy"  # the proxy's server span, in the request's headers
    assert parents["QueryStreamFunction"] == "lambdallm-apigateway"  # the event's headers carry API Gateway's span
    assert parents["POST /model/{modelId}/invoke-with-response-stream"] == "lambdallm-lambda"  # the function's span
    assert parents["model.generate"] == "lambdallm-bedrock"
    request_id = response.headers["X-Request-ID"]
    tagged = {s["resource"]["attributes"]["service.name"] for s in spans if s["attributes"].get("lambdallm.request_id")}
    assert tagged >= {"lambdallm-rest", "lambdallm-proxy", "lambdallm-apigateway", "lambdallm-lambda"}
    assert {s["attributes"]["lambdallm.request_id"] for s in spans if "lambdallm.request_id" in s["attributes"]} == {
        request_id
    }
    (model,) = [s for s in spans if s["name"] == "model.generate"]
    assert [event["name"] for event in model["events"]] == ["first_token"]
    assert PROMPT not in file.read_text()  # prompts and answers are never attributes

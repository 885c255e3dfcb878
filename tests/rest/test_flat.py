"""The flat path of the keyed operations (lambdallm/rest/flat.py): a request it serves gets what Connexion's stack
would have answered, every request it would refuse is Connexion's, and both ways share one admission and one set
of key limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from lambdallm.rest import flat
from lambdallm.rest.app import SPEC
from lambdallm.rest.body_limit import largest_request_bytes
from lambdallm.rest.validators import JsonBodyValidator
from tests.fakes.backend import Reply
from tests.fakes.stack import API_KEY, AUTHORIZATION, running_rest
from tests.rest.test_edge import VALID

JSON = {"Content-Type": "application/json"}
LATIN_1 = {"Content-Type": "application/json; charset=latin-1"}  # served, but never by the flat path
BODY_LIMIT = largest_request_bytes(SPEC)  # the default max_body_bytes
STREAM = {"Accept": "text/event-stream"}
CHAT = {"model": "amazon.titan-text-premier-v1:0", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
COMPLETION = {"model": "amazon.titan-text-premier-v1:0", "prompt": "Once upon", "max_tokens": 5}
CONVERSATION = {
    "system": "Be brief.",
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ],
    "max_tokens": 8,
    "temperature": 0.5,
}
# (method, path, headers beyond the key, body as bytes): each sent to the tier with and without the flat path.
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/query", JSON, json.dumps(VALID).encode()),
    ("POST", "/query", JSON, json.dumps(CONVERSATION).encode()),
    ("POST", "/query", {**JSON, "X-Request-ID": "flat-1"}, json.dumps(VALID).encode()),
    ("POST", "/query", {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(VALID).encode()),
    ("POST", "/query", {**JSON, **STREAM}, json.dumps(VALID).encode()),
    ("POST", "/query", {**JSON, "Accept": "text/html"}, json.dumps(VALID).encode()),  # a 406 from the work
    ("POST", "/v1/chat/completions", JSON, json.dumps(CHAT).encode()),
    ("POST", "/v1/chat/completions", JSON, json.dumps(CHAT | {"stream": True}).encode()),
    ("POST", "/v1/completions", JSON, json.dumps(COMPLETION).encode()),
    ("POST", "/v1/chat/completions", JSON, json.dumps(CHAT | {"model": "no-such-model"}).encode()),  # 404
    # Each refused before the work: by the key, the parameters, the media type or the body.
    ("POST", "/query", {**JSON, "Authorization": "Bearer not-the-key"}, json.dumps(VALID).encode()),
    ("POST", "/query", {**JSON, "Authorization": f"Basic {API_KEY}"}, json.dumps(VALID).encode()),
    ("POST", "/v1/completions", {**JSON, "Authorization": "Bearer"}, json.dumps(COMPLETION).encode()),
    ("POST", "/query", {**JSON, "X-Request-ID": "not ok"}, json.dumps(VALID).encode()),
    ("POST", "/query?stream=1", JSON, json.dumps(VALID).encode()),
    ("POST", "/query", {"Content-Type": "text/plain"}, json.dumps(VALID).encode()),
    ("POST", "/query", LATIN_1, json.dumps(VALID).encode()),
    ("POST", "/query", JSON, b""),
    ("POST", "/query", JSON, b'{"prompt": "a", "prompt": "b", "max_tokens": 3}'),
    ("POST", "/query", JSON, b'{"prompt": "a", "max_tokens": 3'),
    ("POST", "/query", JSON, b"[1, 2]"),
    ("POST", "/query", JSON, json.dumps({"prompt": "a"}).encode()),
    ("POST", "/v1/chat/completions", JSON, json.dumps(CHAT | {"n": 3, "unknown": 1}).encode()),
    ("POST", "/query/", JSON, json.dumps(VALID).encode()),
    ("PUT", "/query", JSON, json.dumps(VALID).encode()),
]
# What differs between any two answers: the request's id and the answer's clock.
_VARYING = {"request_id", "id", "created", "timing", "instance"}


def comparable(response: httpx.Response) -> tuple[int, str, Any]:
    """An answer's status, media type and body, without what differs between any two answers."""
    media_type = response.headers.get("content-type", "")
    if media_type.startswith("text/event-stream"):
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        body: Any = [_without_varying(json.loads(line[6:])) if line != "data: [DONE]" else line for line in events]
    else:
        body = _without_varying(response.json())
    return response.status_code, media_type, body


def _without_varying(document: Any) -> Any:
    if isinstance(document, dict):
        return {k: _without_varying(v) for k, v in document.items() if k not in _VARYING}
    if isinstance(document, list):
        return [_without_varying(item) for item in document]
    return document


@asynccontextmanager
async def rest_client(proxy: Any, flat_path: bool, **overrides: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a REST tier with the flat path, or with Connexion alone (no operation is the flat path's)."""
    with pytest.MonkeyPatch.context() as patch:
        if not flat_path:
            patch.setattr(flat, "operations", lambda *_: {})
        async with (
            running_rest(proxy.target, **overrides) as url,
            httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client,
        ):
            yield client


async def test_every_request_gets_what_connexion_alone_answers(proxy) -> None:
    answers: dict[bool, list[tuple[int, str, Any]]] = {}
    for flat_path in (True, False):
        async with rest_client(proxy, flat_path) as client:
            answers[flat_path] = [
                comparable(await client.request(method, path, headers=headers, content=body))
                for method, path, headers, body in REQUESTS
            ]

    assert answers[True] == answers[False]
    statuses = [status for status, _, _ in answers[True]]
    assert statuses[:5] == [200] * 5 and statuses[6:9] == [200] * 3  # the valid ones were served, not refused
    assert {400, 401, 404, 405, 406, 415} <= set(statuses)


async def test_a_valid_request_skips_connexions_validation_and_any_other_is_connexions(
    proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = []
    parse = JsonBodyValidator._parse

    async def counted(self: JsonBodyValidator, stream: Any, scope: Any) -> Any:
        parsed.append(scope["path"])
        return await parse(self, stream, scope)

    monkeypatch.setattr(JsonBodyValidator, "_parse", counted)
    async with rest_client(proxy, flat_path=True) as client:
        assert (await client.post("/query", json=VALID)).status_code == 200
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert parsed == []
        assert (await client.post("/query", json={"prompt": "a"})).status_code == 400  # handed over whole
        assert (await client.post("/query", content=json.dumps(VALID), headers=LATIN_1)).status_code == 200

    assert parsed == ["/query", "/query"]


@pytest.mark.parametrize("held_by_flat", [True, False])
async def test_both_ways_in_share_one_admission(proxy, held_by_flat: bool) -> None:
    gate = asyncio.Event()
    proxy.fake.replies.append(Reply(hold=gate))
    flat_way = {"json": VALID}
    connexion_way = {"content": json.dumps(VALID), "headers": LATIN_1}
    held, other = (flat_way, connexion_way) if held_by_flat else (connexion_way, flat_way)
    async with rest_client(proxy, flat_path=True, max_in_flight=1) as client:
        call = asyncio.create_task(client.post("/query", **held))  # type: ignore[arg-type]
        await proxy.fake.wait_for_queries(1)

        refused = await client.post("/query", **other)  # type: ignore[arg-type]

        gate.set()
        assert (await call).status_code == 200
        assert (await client.post("/query", **other)).status_code == 200  # type: ignore[arg-type]
    assert refused.status_code == 429
    assert refused.json()["detail"] == "1 requests are in flight, the most this server takes; retry later"


async def test_a_chunked_body_over_the_limit_is_connexions_413_read_once(proxy) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(BODY_LIMIT // 100_000 + 1):
            yield b"a" * 100_000
        yield b'", "max_tokens": 3}'

    async with rest_client(proxy, flat_path=True) as client:
        answer = await client.post("/query", content=chunks(), headers=JSON)
        served = await client.post("/query", json=VALID)

    assert answer.status_code == 413
    assert answer.json()["detail"] == f"request body exceeds {BODY_LIMIT} bytes"
    assert served.status_code == 200

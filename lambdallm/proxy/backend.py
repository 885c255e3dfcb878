"""The proxy's one long-lived HTTP client (lambdallm/proxy/backend_http.py) for the LLM backend's
`POST /query/stream`: streams are passed on as they come, and whole answers are the same stream collected, so that a
caller who goes away stops either within a token. `GET /models` (the models the backend serves) goes through the same
client, signed the same way."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from lambdallm import tracing
from lambdallm.proxy.backend_http import BackendHTTP, BackendHTTPError, Response
from lambdallm.proxy.errors import ProxyError, bad_backend_answer, from_backend_status, map_backend_errors
from lambdallm.proxy.signing import BackendSigner
from lambdallm.settings import ProxySettings
from llm_wire.request import BATCH_HEADER
from llm_wire.timing import finite_ms
from llm_wire.tools import ToolCall, ToolCallPiece

FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls"})
# Lambda's response payload limit (6 MB): no answer of a working backend is larger.
MAX_BODY_BYTES = 6 * 1024 * 1024
# The backend's answer to the readiness probe's empty query: its validation refusal, and nothing else.
PROBE_ANSWER = 400
# The model list is small (ids and two attributes each): a larger answer is no working backend's.
MAX_MODELS_BYTES = 256 * 1024
MAX_LINE_BYTES = 128 * 1024  # a stream event: no working backend's is longer
DRAIN_BYTES = 65536  # read after the done event so that the connection is reused; more, and it closes
# A whole answer's lines may come joined, those the backend made within this long of its last write (X-Batch-Ms,
# specs/backend.yaml): fewer writes and reads in both tiers, and a hang-up still seen at the next write.
WHOLE_ANSWER_BATCH_MS = 20
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class Model:
    """One model the backend serves (specs/backend.yaml ModelInfo)."""

    id: str
    owned_by: str
    instruct: bool


def parse_models(body: bytes) -> list[Model]:
    """The backend's `GET /models` answer (a ModelList); anything else is an INTERNAL ProxyError."""
    data = _json_object(body)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise bad_backend_answer("models is missing or empty")
    listed = []
    for item in models:
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in ("id", "owned_by")):
            raise bad_backend_answer("a model has no id or owned_by")
        if not isinstance(item.get("instruct"), bool):
            raise bad_backend_answer("a model's instruct is not a boolean")
        listed.append(Model(item["id"], item["owned_by"], item["instruct"]))
    return listed


@dataclass(frozen=True)
class Completion:
    """A backend answer that matches the contract's BackendResponse."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    request_id: str
    tool_calls: tuple[ToolCall, ...] = ()
    timing: tuple[tuple[str, float], ...] = ()  # the done event's inclusive times (backend, model), in ms


def parse_stream_event(line: bytes) -> str | ToolCallPiece | Completion:
    """One line of a backend stream: the text of a `text` event, a `tool_call` piece, or the Completion of the
    `done` event (its text empty); an `error` event raises the ProxyError its status maps to, anything else an
    INTERNAL one."""
    data = _json_object(line)
    kind = data.get("type")
    if kind == "text" and isinstance(data.get("text"), str):
        return str(data["text"])
    if kind == "tool_call":
        index = data.get("index")
        fields = {key: data.get(key, "") for key in ("id", "name", "arguments")}
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024:
            raise bad_backend_answer("a tool_call event has no index")
        if not all(isinstance(value, str) for value in fields.values()):
            raise bad_backend_answer("a tool_call event's id, name or arguments is not a string")
        return ToolCallPiece(index, **fields)
    if kind == "done":
        return _completion(data | {"text": ""})
    if kind == "error" and isinstance(data.get("status"), int):
        raise from_backend_status(data["status"], line)
    raise bad_backend_answer(f"stream event {str(kind)[:20]!r} is unknown or incomplete")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise bad_backend_answer("body is not JSON") from exc
    if not isinstance(data, dict):
        raise bad_backend_answer("body is not an object")
    return data


def _completion(data: dict[str, Any]) -> Completion:
    for key in ("text", "model", "finish_reason", "request_id"):
        if not isinstance(data.get(key), str):
            raise bad_backend_answer(f"{key} is missing or not a string")
    for key in ("input_tokens", "output_tokens"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _INT32_MAX:
            raise bad_backend_answer(f"{key} is missing or not a count")
    if data["finish_reason"] not in FINISH_REASONS:
        raise bad_backend_answer(f"finish_reason {data['finish_reason']!r} is unknown")
    fields = {key: data[key] for key in Completion.__dataclass_fields__ if key not in ("tool_calls", "timing")}
    return Completion(**fields, timing=_timing(data.get("timing")))


def _timing(timing: Any) -> tuple[tuple[str, float], ...]:
    """The done event's `timing` entries that are known tiers with a duration; advisory, so nothing in it fails
    the answer."""
    if not isinstance(timing, dict):
        return ()
    durations = ((name, finite_ms(timing.get(name))) for name in ("backend", "model"))
    return tuple((name, ms) for name, ms in durations if ms is not None)


async def read_capped(response: Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """The response body, or an INTERNAL ProxyError as soon as it exceeds `limit` bytes."""
    body = await response.read(limit)
    if body is None:
        raise bad_backend_answer(f"body exceeds {limit} bytes")
    return body


class Backend:
    """One pool of backend connections per process for generations, and a separate one for readiness probes,
    so that a full pool of long generations never makes the backend look down."""

    def __init__(self, settings: ProxySettings) -> None:
        self._settings = settings
        # The one route generations take; the readiness probe asks it too, so a backend is ready only when the
        # route every call needs answers.
        self._url = settings.backend_url.rstrip("/") + "/query/stream"
        self._models_url = settings.backend_url.rstrip("/") + "/models"
        self._path, self._models_path = urlsplit(self._url).path, urlsplit(self._models_url).path
        self._http: BackendHTTP | None = None
        self._probe_http: BackendHTTP | None = None
        self._signer = BackendSigner.from_settings(settings)

    async def _request(
        self, url: str, payload: dict[str, Any] | None, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """The JSON body (a POST's; None: a GET's, empty) and the headers of one backend request, signed when
        backend_auth is "iam"."""
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = headers if payload is None else {"Content-Type": "application/json", **headers}
        if self._signer is None:
            return body, headers
        with map_backend_errors():  # credentials that cannot be had are this proxy's failure, said once
            return body, await self._signer.sign("GET" if payload is None else "POST", url, body, headers)

    async def __aenter__(self) -> Self:
        # Idle connections are not used again after 30 s, before the backend's side closes them (the local
        # cloud's: 75 s), so a request never goes out on a connection the backend is closing.
        settings = self._settings
        self._http = BackendHTTP(settings.backend_url, settings.max_connections, settings.connect_timeout_s)
        self._probe_http = BackendHTTP(settings.backend_url, 4, settings.probe_timeout_s)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for pool in (self._http, self._probe_http):
            if pool is not None:
                pool.close()
        self._http = self._probe_http = None

    @property
    def http(self) -> BackendHTTP:
        """The open pool; using the backend outside its `async with` block is a bug."""
        if self._http is None:
            raise RuntimeError("Backend is not open")
        return self._http

    @staticmethod
    def _timeout(budget_s: float | None, limit_s: float) -> float:
        """The caller's budget, within `limit_s`, in seconds."""
        total = limit_s if budget_s is None else min(budget_s, limit_s)
        return max(total, 0.001)

    async def generate(self, payload: dict[str, Any], request_id: str, budget_s: float | None) -> Completion:
        """The whole answer: the backend's stream collected within `budget_s` and `backend_timeout_s`. A caller who
        goes away cancels the stream, which stops the generation. Raise ProxyError on any failure, before or after
        the first piece, with the status a stream's failure has."""
        text: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> id, name, arguments so far
        size = 0
        completion: Completion | None = None
        limit_s = self._settings.backend_timeout_s
        stream = self.generate_stream(payload, request_id, budget_s, limit_s, batch_ms=WHOLE_ANSWER_BATCH_MS)
        async with aclosing(stream):
            async for piece in stream:  # to its end, which returns the connection to the pool
                if isinstance(piece, Completion):
                    completion = piece
                    continue
                chunk = piece if isinstance(piece, str) else piece.arguments
                size += len(chunk.encode())
                if size > MAX_BODY_BYTES:
                    raise bad_backend_answer(f"text exceeds {MAX_BODY_BYTES} bytes")
                if isinstance(piece, str):
                    text.append(piece)
                elif piece.index in calls:
                    calls[piece.index][2] += piece.arguments
                else:
                    calls[piece.index] = [piece.id, piece.name, piece.arguments]
        if completion is None:
            raise bad_backend_answer("the stream ended without a done event")
        tool_calls = tuple(ToolCall(*calls[index]) for index in sorted(calls))
        return dataclasses.replace(completion, text="".join(text), tool_calls=tool_calls)

    async def generate_stream(
        self,
        payload: dict[str, Any],
        request_id: str,
        budget_s: float | None,
        limit_s: float | None = None,
        *,
        batch_ms: int = 0,
    ) -> AsyncGenerator[str | ToolCallPiece | Completion]:
        """POST the payload to the backend's stream within `budget_s` seconds for the whole stream (and `limit_s`,
        by default `stream_timeout_s`); yield text as each line arrives, then the final Completion (its text
        empty). Raise ProxyError on any failure. `batch_ms`: the backend may join the lines it makes within that
        long of its last write (for a whole answer; 0, each line as it is made)."""
        headers = {"X-Request-ID": request_id, "Accept": "application/x-ndjson"}
        if batch_ms:
            headers[BATCH_HEADER] = str(batch_ms)
        tracing.inject_headers(headers)  # the trace goes in the headers, before they are signed
        body, headers = await self._request(self._url, payload, headers)
        timeout = self._timeout(budget_s, self._settings.stream_timeout_s if limit_s is None else limit_s)
        with map_backend_errors():
            async with self.http.request("POST", self._path, body, headers, timeout) as response:
                if response.status != 200:
                    body = await read_capped(response)
                    raise from_backend_status(response.status, body, response.headers.get("retry-after"))
                try:
                    async for line in response.lines(MAX_LINE_BYTES):
                        if line.strip():
                            event = parse_stream_event(line)
                            yield event
                            if isinstance(event, Completion):
                                await response.drain(DRAIN_BYTES)
                                return
                except ValueError as exc:  # a line over MAX_LINE_BYTES, which no event is
                    raise bad_backend_answer("a stream line is too long") from exc
        raise bad_backend_answer("the stream ended without a done event")

    async def list_models(self, request_id: str, budget_s: float | None) -> list[Model]:
        """The backend's `GET /models` within `budget_s` and `backend_timeout_s`, its body capped; a non-200
        answer raises the ProxyError its status maps to (the same table as a generation's)."""
        headers = {"X-Request-ID": request_id, "Accept": "application/json"}
        tracing.inject_headers(headers)
        _, headers = await self._request(self._models_url, None, headers)
        timeout = self._timeout(budget_s, self._settings.backend_timeout_s)
        with map_backend_errors():
            async with self.http.request("GET", self._models_path, b"", headers, timeout) as response:
                answer = await read_capped(response, MAX_MODELS_BYTES)
                if response.status != 200:
                    raise from_backend_status(response.status, answer, response.headers.get("retry-after"))
        return parse_models(answer)

    async def reachable(self) -> bool:
        """A cheap probe on its own connection: an empty query, which a backend that can generate refuses with
        a 400 without running the model. Any other answer (a 404 or API Gateway's 403 for a wrong URL, a 5xx)
        or none within probe_timeout_s means not ready."""
        if self._probe_http is None:
            raise RuntimeError("Backend is not open")
        timeout = self._settings.probe_timeout_s
        try:
            body, headers = await self._request(self._url, {}, {"X-Request-ID": "health-probe"})
            async with self._probe_http.request("POST", self._path, body, headers, timeout) as response:
                await read_capped(response, 65536)
                return response.status == PROBE_ANSWER
        except (BackendHTTPError, OSError, ProxyError):  # TimeoutError is an OSError
            return False

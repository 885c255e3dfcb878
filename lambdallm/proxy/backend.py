"""The proxy's one long-lived HTTP client (lambdallm/proxy/backend_http.py) for the LLM backend's
`POST /query/stream`: streams are passed on as they come, and whole answers are the same stream collected, so that a
caller who goes away stops either within a token. `GET /models` (the models the backend serves) goes through the same
client, signed the same way."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from lambdallm import tracing
from lambdallm.proxy.answers import Completion, Model, joined_events, parse_models
from lambdallm.proxy.backend_http import BackendHTTP, BackendHTTPError, Response
from lambdallm.proxy.errors import ProxyError, bad_backend_answer, from_backend_status, map_backend_errors
from lambdallm.proxy.signing import BackendSigner
from lambdallm.settings import ProxySettings
from llm_wire.request import BATCH_HEADER
from llm_wire.tools import ToolCall, ToolCallPiece

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
        batch_ms: int | None = None,
    ) -> AsyncGenerator[str | ToolCallPiece | Completion]:
        """POST the payload to the backend's stream within `budget_s` seconds for the whole stream (and `limit_s`,
        by default `stream_timeout_s`); yield text as it arrives (the pieces that came together joined), then the
        final Completion (its text empty). Raise ProxyError on any failure. `batch_ms`: the backend may join the
        lines it makes within that long of its last write (by default `stream_batch_ms`; 0, each line as it is
        made)."""
        headers = {"X-Request-ID": request_id, "Accept": "application/x-ndjson"}
        if batch_ms is None:
            batch_ms = self._settings.stream_batch_ms
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
                    async for lines in response.line_groups(MAX_LINE_BYTES):
                        for event in joined_events(lines):
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

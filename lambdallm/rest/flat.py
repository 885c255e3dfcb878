"""The flat path of the keyed operations (POST /query, /v1/chat/completions, /v1/completions): what Connexion does
for a request it serves, done in one layer with everything per operation built at start (issue 28).

Connexion's stack costs about 0.8 ms of CPU per request beside the 0.5 the work itself takes (bench/README.md):
its routing, security, validation both ways and context each read the request again through their own proxies.
This layer, in front of it, serves a request that it can see will be served: routed by a dict, the key checked by
the same KeyRing, the header parameters and the body (read once, as strict JSON) by the same compiled schema checks
(rest/validators.py), then the same admission and key limits (rest/edge.py, rest/limits.py) and the same work
(rest/answers.py), the JSON answer checked by the same compiled response check. Any request it would refuse (a
wrong key, method, media type, parameter or body) is handed to Connexion whole, which words every refusal, so that
there is one wording of each; an error of the work itself is worded by the app's error handlers
(rest/problems.py), as Connexion's exception middleware would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from connexion.jsonifier import Jsonifier
from connexion.lifecycle import ConnexionResponse
from connexion.spec import Specification
from starlette.datastructures import Headers, State
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lambdallm.body import ClientGone, read_body
from lambdallm.rest import answers, problems, routing
from lambdallm.rest.auth import bearer_key, token_info
from lambdallm.rest.event_stream import EventStreamResponse
from lambdallm.rest.keyring import KeyRing
from lambdallm.rest.middleware import with_body
from lambdallm.rest.validators import compiled, nonconforming
from lambdallm.schema_check import SchemaCheck
from llm_wire import strict_json

JSON = "application/json"
_CONTEXT = "connexion_context"  # where Connexion's security writes the checked key's token info (rest/limits.py)
_BROUGHT = "lambdallm_flat"  # a request the flat path brought to the limits: its operation and body
# The work of each operation this path serves, by the id Connexion routes it by (rest/edge.py's `routed_id`).
WORK: dict[str, Callable[[Any, dict[str, Any], Headers], Awaitable[answers.Answer]]] = {
    "handlers.query.generateText": answers.generate_text,
    "handlers.openai.createChatCompletion": answers.create_chat_completion,
    "handlers.openai.createCompletion": answers.create_completion,
}


@dataclass(frozen=True)
class HeaderParameter:
    """A header parameter of an operation: its name (lower case), whether it is required, its compiled check."""

    name: str
    required: bool
    check: SchemaCheck


@dataclass(frozen=True)
class Operation:
    """One operation the flat path serves, as its spec says: its routed id and base path, header parameters,
    request body check (application/json), answer check (200 application/json) and work."""

    operation_id: str
    base_path: str
    parameters: tuple[HeaderParameter, ...]
    body: SchemaCheck
    answer: SchemaCheck
    work: Callable[[Any, dict[str, Any], Headers], Awaitable[answers.Answer]]


def operations(spec: Path, base_path: str, keyed: frozenset[str]) -> dict[str, Operation]:
    """The POST operations of `spec` (served under `base_path`) that the flat path serves, by their path: those
    of `keyed` (they need the key) with work in WORK, whose parameters are all headers and whose only request media
    type is application/json. Every other operation is Connexion's alone."""
    document = Specification.load(spec)  # its $refs resolved, as Connexion serves it
    served = {}
    for path, item in document["paths"].items():
        operation = item.get("post")
        if not isinstance(operation, dict):
            continue
        controller = operation.get("x-openapi-router-controller")
        routed = f"{controller}.{operation['operationId']}" if controller else str(operation["operationId"])
        parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
        content = operation.get("requestBody", {}).get("content", {})
        if routed not in keyed or routed not in WORK or list(content) != [JSON]:
            continue
        if any(parameter["in"] != "header" for parameter in parameters):
            continue
        headers = tuple(
            HeaderParameter(p["name"].lower(), bool(p.get("required")), compiled(p.get("schema", p)))
            for p in parameters
        )
        answer = operation["responses"]["200"]["content"][JSON]["schema"]
        served[base_path + path] = Operation(
            operation_id=routed,
            base_path=base_path,
            parameters=headers,
            body=compiled(content[JSON]["schema"], Draft4RequestValidator),
            answer=compiled(answer, Draft4ResponseValidator),
            work=WORK[routed],
        )
    return served


class FlatPath:
    """ASGI middleware in front of Connexion (`app`): serves the requests to `served` operations that Connexion
    would serve, through `limits` (the tier's admission and key limits, the same instances Connexion's requests go
    through, ending in a Junction); hands every other request to `app`."""

    def __init__(
        self, app: ASGIApp, served: dict[str, Operation], keys: KeyRing, max_body_bytes: int, limits: ASGIApp
    ) -> None:
        self.app = app
        self.served = served
        self.keys = keys
        self.max_body_bytes = max_body_bytes
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation = self.served.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        # Strict validation refuses any query parameter (Connexion's 400); a root path would move Connexion's routes.
        if operation is None or scope["query_string"] or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        info = self._caller(headers)
        if info is None or not _headers_pass(operation, headers):
            await self.app(scope, receive, send)
            return
        read: list[Message] = []

        async def recorded() -> Message:
            message = await receive()
            read.append(message)
            return message

        try:
            raw = await read_body(recorded, self.max_body_bytes)
        except ClientGone:  # nobody to answer
            return
        body = _body(operation, raw)
        if raw is None or body is None:  # Connexion refuses it (413, 400), handed what was read first
            await self.app(scope, _replay(read, receive), send)
            return
        extensions = scope.setdefault("extensions", {})  # shared with the outer layers' scope: they see these
        extensions[routing.EXTENSION] = {"api_base_path": operation.base_path, "operation_id": operation.operation_id}
        if info:
            extensions.setdefault(_CONTEXT, {})["token_info"] = info
        extensions[_BROUGHT] = (operation, body)
        scope, receive = with_body(scope, receive, raw)
        await self.limits(scope, receive, send)

    def _caller(self, headers: Headers) -> dict[str, Any] | None:
        """The token info of the request's valid bearer key ({} when the tier asks for none), else None; the
        Authorization header read as Connexion's bearer security reads it."""
        if not self.keys:
            return {}
        scheme_token = headers.get("authorization", "").split(maxsplit=1)
        if len(scheme_token) != 2 or scheme_token[0].lower() != "bearer":
            return None
        key = bearer_key(self.keys, scheme_token[1])
        return token_info(key) if key is not None else None


def _headers_pass(operation: Operation, headers: Headers) -> bool:
    """Whether the body is said to be JSON (in UTF-8, or without a charset) and every header parameter is as its
    schema says."""
    media_type, _, parameters = headers.get("content-type", "").partition(";")
    if media_type.strip() != JSON or parameters.strip().lower() not in ("", "charset=utf-8"):
        return False
    for parameter in operation.parameters:
        value = headers.get(parameter.name)
        if value is None:
            if parameter.required:
                return False
        elif not parameter.check.accepts(value):
            return False
    return True


def _body(operation: Operation, raw: bytes | None) -> dict[str, Any] | None:
    """The request's body if it is strict JSON its schema accepts, else None."""
    if not raw:
        return None
    try:
        body = strict_json.loads(raw)
    except strict_json.JsonRejected:
        return None
    return body if isinstance(body, dict) and operation.body.accepts(body) else None


def _replay(read: list[Message], receive: Receive) -> Receive:
    """A receive that hands over the messages already `read`, then the rest from `receive`."""
    pending = list(read)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class Junction:
    """The innermost of the tier's limits: the work of a request the flat path brought, else Connexion's
    validation and handler (`connexion`, set by SharedLimits once Connexion builds its stack)."""

    def __init__(self) -> None:
        self.connexion: ASGIApp | None = None
        self.jsonifier = Jsonifier()  # Connexion's, so that an answer's bytes are the same either way

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        brought = scope.get("extensions", {}).pop(_BROUGHT, None)
        if brought is None:
            assert self.connexion is not None, "SharedLimits is not in Connexion's stack"
            await self.connexion(scope, receive, send)
            return
        operation, body = brought
        try:
            answer = await operation.work(State(scope["state"]), body, Headers(scope=scope))
            if not isinstance(answer, EventStreamResponse) and not operation.answer.accepts(answer):
                raise nonconforming(operation.answer.first_error(answer) or "")
        except HTTPException as exc:  # what Connexion's exception middleware would answer
            await _send(scope, receive, send, await problems.on_problem(None, exc))
            return
        except Exception as exc:
            await _send(scope, receive, send, await problems.on_unexpected(None, exc))
            return
        if isinstance(answer, EventStreamResponse):
            await answer(scope, receive, send)
            return
        content = self.jsonifier.dumps(answer).encode()
        raw_headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})


class SharedLimits:
    """ASGI middleware between Connexion's security and its validation (`app`): the tier's `limits`, whose
    `junction` leads on to `app`, so that a request Connexion serves and one the flat path serves are counted
    by the same admission and key limits."""

    def __init__(self, app: ASGIApp, limits: ASGIApp, junction: Junction) -> None:
        junction.connexion = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.limits(scope, receive, send)


async def _send(scope: Scope, receive: Receive, send: Send, response: ConnexionResponse) -> None:
    """An error handler's answer, as Connexion's exception middleware writes it."""
    answer = Response(response.body, response.status_code, response.headers, response.mimetype)
    await answer(scope, receive, send)

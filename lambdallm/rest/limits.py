"""Each key's own limits, in front of the generation work: a request over one is a 429 naming the limit, with a
Retry-After computed from the window; its answer's tokens and its stream are counted out when it ends."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from lambdallm.rest import routing, usage
from lambdallm.rest.auth import KEY
from lambdallm.rest.keyring import Key
from lambdallm.rest.limit_store import LimitStore, Refusal, StoreAway
from lambdallm.rest.problems import send_problem
from lambdallm.rest.usage import UsageMetrics

log = logging.getLogger("lambdallm.rest")
_CONTEXT = "connexion_context"  # where Connexion's security writes the token info of the checked key


def caller(scope: Scope) -> Key | None:
    """The key Connexion's security found for this request, if any."""
    token_info: Any = scope.get("extensions", {}).get(_CONTEXT, {}).get("token_info")
    key = token_info.get(KEY) if isinstance(token_info, dict) else None
    return key if isinstance(key, Key) else None


def refusal_detail(key: Key, refusal: Refusal) -> str:
    """The 429's detail: the key's id (never its secret), the limit, and when to try again."""
    return f"key {key.id!r} is over its {refusal.limit} limit ({refusal.value}); retry after {refusal.retry_after_s} s"


class KeyLimits:
    """ASGI middleware after Connexion's security (and the tier's admission): for a request routed to one of
    `limited`, the caller's key is let in by `store` or refused; its answer's usage is counted per key and model."""

    def __init__(self, app: ASGIApp, store: LimitStore, metrics: UsageMetrics, limited: frozenset[str]) -> None:
        self.app = app
        self.store = store
        self.metrics = metrics
        self.limited = limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = caller(scope)
        routed = routing.operation_id(scope)
        if key is None or routed not in self.limited:
            await self.app(scope, receive, send)
            return
        limited, lease = key.limits.any(), ""
        if limited:
            lease = uuid.uuid4().hex
            try:
                refusal = await self.store.admit(key.id, key.limits, lease)
            except StoreAway:
                detail = "the limits store is unreachable, and this server refuses limited keys without it"
                await send_problem(send, 503, "Service Unavailable", detail, {"Retry-After": "1"})
                return
            if refusal is not None:
                self.metrics.refused.labels(key.id, refusal.limit).inc()
                log.info("key over its limit", extra={"key": key.id, "limit": refusal.limit})
                headers = {"Retry-After": str(refusal.retry_after_s)}
                await send_problem(send, 429, "Too Many Requests", refusal_detail(key, refusal), headers)
                return
        answer = usage.Answer()
        token = usage.current.set(answer)
        try:
            await self.app(scope, receive, send)
        finally:
            usage.current.reset(token)
            if answer.model:
                self.metrics.count(key.id, answer)
            if limited:
                # Shielded: a client that hangs up cancels this task, and the stream must still be freed.
                await asyncio.shield(self.store.finish(key.id, key.limits, lease, answer.tokens))

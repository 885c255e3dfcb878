"""Who may call the proxy: callers that present one of the operator's tokens as `authorization: Bearer <token>`
metadata on every LlmService call, checked in constant time before anything else runs.

Health checking and reflection stay open: they spend nothing and say nothing secret, and probes carry no token.
A health check that does present a token must present a valid one, so that a caller whose token is refused (the
REST tier's /ready, which checks with the metadata of its real calls) hears so rather than SERVING.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
from prometheus_client import Counter

from lambdallm.bearer import read_tokens
from lambdallm.settings import ProxySettings, SettingsError

_SCHEME = "bearer "
_HEALTH = "/grpc.health.v1.Health/"
REFUSAL = "this call needs the proxy's token: authorization: Bearer <token>"


def proxy_tokens(settings: ProxySettings) -> tuple[bytes, ...]:
    """The tokens that open LlmService (`tokens` and the lines of `tokens_file`); none with auth "none". With
    auth "token" and no token, a SettingsError: the proxy is never open by accident."""
    if settings.auth == "none":
        return ()
    tokens = read_tokens(settings.tokens, settings.tokens_file, "tokens")
    if not tokens:
        raise SettingsError(
            'auth is "token" but no token is set: set tokens_file (or LAMBDALLM_PROXY_TOKENS), '
            'or auth = "none" to let any caller that reaches the port spend on the backend'
        )
    return tuple(token.encode() for token in tokens)


def presented_token(metadata: Sequence[tuple[str, Any]] | None) -> bytes | None:
    """The bearer token of a call's `authorization` metadata, its surrounding whitespace trimmed; None if absent."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value[: len(_SCHEME)].lower() == _SCHEME:
            return value[len(_SCHEME) :].strip().encode()
    return None


class RequireToken(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call to `service` without one of `tokens` with UNAUTHENTICATED, before the call is limited,
    decoded or forwarded, and every health check that presents `authorization` metadata without one of them;
    other calls pass."""

    def __init__(self, tokens: tuple[bytes, ...], service: str, refused: Counter) -> None:
        self._tokens = tokens
        self._prefix = f"/{service}/"
        self._refused = refused
        self._refusal = grpc.unary_unary_rpc_method_handler(self._refuse)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not self._tokens or not self._needs_token(str(details.method), details.invocation_metadata):
            return await continuation(details)
        if self._valid(presented_token(details.invocation_metadata)):
            return await continuation(details)
        self._refused.inc()
        return self._refusal

    def _needs_token(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> bool:
        if method.startswith(self._prefix):
            return True
        return method.startswith(_HEALTH) and any(key == "authorization" for key, _ in metadata or ())

    def _valid(self, sent: bytes | None) -> bool:
        if sent is None:
            return False
        matched = False
        # Compared with every token, whatever matches, so that the time taken says nothing about any token.
        for token in self._tokens:
            matched |= hmac.compare_digest(sent, token)
        return matched

    @staticmethod
    async def _refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)

"""Channel interceptors that present a token on every call, for tests that call the proxy directly (the REST tier
passes its token as per-call metadata instead: lambdallm/rest/llm.py, ProxyClient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from lambdallm.bearer import authorization_metadata


def _with(details: grpc.aio.ClientCallDetails, metadata: tuple[tuple[str, str], ...]) -> grpc.aio.ClientCallDetails:
    merged = grpc.aio.Metadata(*(details.metadata or ()), *metadata)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, merged, details.credentials, details.wait_for_ready
    )


class _OnUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(_with(details, self._metadata), request)


class _OnStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(_with(details, self._metadata), request)


def present_token(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors adding `authorization: Bearer <token>` to every unary and server-streaming call (grpc.aio files
    each interceptor under one kind of call, hence two)."""
    metadata = authorization_metadata(token)
    return [_OnUnary(metadata), _OnStream(metadata)]

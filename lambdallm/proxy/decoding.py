"""Request messages that do not decode are the caller's error: INVALID_ARGUMENT, not grpc's UNKNOWN.

grpc.aio answers a message its deserializer cannot parse (corrupt wire format, a string that is not UTF-8)
with UNKNOWN and the parser's exception in the details. This interceptor, the one place for it, decodes each
unary request itself and aborts with INVALID_ARGUMENT before the servicer runs.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

_UNDECODABLE = object()


def _lenient(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError:
            return _UNDECODABLE

    return decode


async def _refuse(context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request is not a valid protobuf message of its type")


def _unary(behavior: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request is _UNDECODABLE:
            await _refuse(context)
        return await behavior(request, context)

    return call


def _streaming(behavior: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        if request is _UNDECODABLE:
            await _refuse(context)
        async for response in responses(behavior(request, context)):
            yield response

    return call


async def responses(result: Any) -> AsyncIterator[Any]:
    """The messages of a server-streaming behaviour's `result`: an async generator's, or none from a coroutine
    that writes its own through context.write (grpc's health Watch does)."""
    if inspect.isasyncgen(result):
        async for message in result:
            yield message
    else:
        await result


class DecodeRequests(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every unary-request method so that an undecodable request is INVALID_ARGUMENT."""

    def __init__(self) -> None:
        # Only methods the server serves (known, fixed at start) are kept: the map's size is bounded.
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method
        if method in self._handlers:
            return self._handlers[method] or await continuation(details)
        handler = await continuation(details)
        if handler is None:  # an unknown method: never remembered, so client-chosen names cannot grow this map
            return None
        self._handlers[method] = _wrap(handler)
        return self._handlers[method] or handler


def _wrap(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler | None:
    """`handler` decoding its request leniently; None (leave it be) for client-streaming or unknown methods."""
    if handler is None or handler.request_streaming or handler.request_deserializer is None:
        return None
    decode = _lenient(handler.request_deserializer)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_unary(handler.unary_unary), decode, handler.response_serializer)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _streaming(handler.unary_stream), decode, handler.response_serializer
        )
    return None

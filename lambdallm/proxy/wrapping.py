"""The proxy's server interceptors' one way to wrap a method: each call between an `enter` and a `leave` of the
interceptor's, unary and server-streaming calls alike, `leave` told the status the call ended with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from lambdallm.proxy.decoding import responses

T = TypeVar("T")
Enter = Callable[[grpc.aio.ServicerContext], Awaitable[T]]  # before the call; may abort it (then no leave)
Leave = Callable[[T, grpc.StatusCode], None]  # after it, with what `enter` returned and the call's status


def wrapped(handler: grpc.RpcMethodHandler, enter: Enter[T], leave: Leave[T]) -> grpc.RpcMethodHandler:
    """`handler` with each of its calls run between `enter` and `leave`; a bidirectional one (reflection's) as is."""
    serializers = {"request_deserializer": handler.request_deserializer}
    serializers["response_serializer"] = handler.response_serializer
    if (unary_behavior := handler.unary_unary) is not None:

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            state = await enter(context)
            status = grpc.StatusCode.OK
            try:
                return await unary_behavior(request, context)
            except BaseException as exc:
                status = status_of(exc, context)
                raise
            finally:
                leave(state, status)

        return grpc.unary_unary_rpc_method_handler(unary, **serializers)
    if (stream_behavior := handler.unary_stream) is not None:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            state = await enter(context)
            status = grpc.StatusCode.OK
            try:
                async for message in responses(stream_behavior(request, context)):
                    yield message
            except BaseException as exc:
                status = status_of(exc, context)
                raise
            finally:
                leave(state, status)

        return grpc.unary_stream_rpc_method_handler(stream, **serializers)
    return handler


def status_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call that raised `exc` ends with: the aborted one, CANCELLED, or gRPC's UNKNOWN."""
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code() if isinstance(exc, grpc.aio.AbortError) else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN

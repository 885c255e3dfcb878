"""The answer of a streamed generation: server-sent events written as the gRPC stream delivers them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from lambdallm.rest.negotiation import EVENT_STREAM


class EventStreamResponse(StreamingResponse):
    """A text/event-stream answer that starts no task of its own to watch for a disconnect.

    Starlette's StreamingResponse cancels its writer when the client leaves, so the task awaiting the next gRPC
    message would be cancelled mid-batch; here RequestContext sees the client leave and cancels the gRPC call,
    the events end, and the generator is closed however the answer ends.
    """

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        super().__init__(events, media_type=EVENT_STREAM, headers={"Cache-Control": "no-cache"})
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.stream_response(send)
        finally:
            aclose = getattr(self.events, "aclose", None)
            if aclose is not None:
                await aclose()

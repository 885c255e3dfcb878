"""Request bodies read within a limit, for both local servers: sized and chunked alike, never more than allowed."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request


class ClientGone(Exception):
    """The HTTP client disconnected before its answer (before its whole body, or while its work ran)."""


async def read_body(request: Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit` bytes (the rest stays unread);
    `ClientGone` if the client hangs up before sending all of it."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
    except ClientDisconnect as exc:
        raise ClientGone from exc
    return bytes(body)

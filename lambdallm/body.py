"""Request bodies read within a limit, for every HTTP tier (the REST tier's edge, the local API Gateway and the
local Bedrock): sized and chunked alike, never more than allowed, and the rest left unread."""

from __future__ import annotations

from starlette.types import Receive


class ClientGone(Exception):
    """The HTTP client disconnected before its answer (before its whole body, or while its work ran)."""


async def read_body(receive: Receive, limit: int, content_length: str = "") -> bytes | None:
    """The whole request body, or None as soon as it is known to exceed `limit` bytes: from the request's
    announced `content_length` before anything is read, or as it comes; `ClientGone` if the client hangs up
    before sending all of it."""
    if content_length.isdigit() and int(content_length) > limit:
        return None
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):  # most bodies: one message
        whole: bytes = message.get("body", b"")
        return whole if len(whole) <= limit else None
    body = bytearray()
    while True:
        if message["type"] != "http.request":
            raise ClientGone
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body", False):
            return bytes(body)
        message = await receive()

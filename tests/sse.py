"""Server-sent events as a client reads them: httpx-sse's parser (the WHATWG spec's), over a whole body."""

from __future__ import annotations

from typing import Any

import httpx
from httpx_sse import EventSource


def parse_events(text: str) -> list[tuple[str, Any]]:
    """(event, JSON data) of each event of a text/event-stream body."""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
    return [(event.event, event.json()) for event in EventSource(response).iter_sse()]

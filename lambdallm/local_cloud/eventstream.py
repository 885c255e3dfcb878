"""An encoder for AWS event-stream messages (`application/vnd.amazon.eventstream`), as Bedrock streams them."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_STRING = 7  # header value type: UTF-8 string


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message: prelude (total length, headers length, CRC), headers, payload, CRC of all before it."""
    return _message(_headers(headers), payload)


def _headers(headers: dict[str, str]) -> bytes:
    return b"".join(
        struct.pack("!B", len(name)) + name + struct.pack("!BH", _STRING, len(value)) + value
        for name, value in ((k.encode(), v.encode()) for k, v in headers.items())
    )


def _message(headers: bytes, payload: bytes) -> bytes:
    prelude = struct.pack("!II", 12 + len(headers) + len(payload) + 4, len(headers))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + headers + payload
    return message + struct.pack("!I", binascii.crc32(message))


def json_event(event_type: str, body: dict[str, Any]) -> bytes:
    """An event of `event_type` whose payload is `body` as JSON (ConverseStream's events are this)."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(body).encode())


# A chunk's headers are the same in every chunk: encoded once (a stream has one chunk a token).
_CHUNK_HEADERS = _headers({":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"})


def chunk_event(body: dict[str, Any]) -> bytes:
    """A `chunk` event whose payload carries `body` as base64 JSON, like InvokeModelWithResponseStream."""
    encoded = base64.b64encode(json.dumps(body).encode())  # base64's alphabet needs no escaping in a JSON string
    return _message(_CHUNK_HEADERS, b'{"bytes": "' + encoded + b'"}')


@dataclass(frozen=True)
class Frames:
    """How one streaming operation frames a generation: events before the text, per piece, and at the end."""

    start: Callable[[], list[bytes]]
    piece: Callable[[str, int], bytes]  # (text, output tokens so far)
    end: Callable[[Any, int, int], list[bytes]]  # (Completion, invocation ms, first byte ms)


def exception_event(exception_type: str, message: str) -> bytes:
    """An exception message (e.g. `modelStreamErrorException`); boto3 raises it mid-iteration."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())

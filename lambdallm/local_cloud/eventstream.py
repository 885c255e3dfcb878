"""An encoder for AWS event-stream messages (`application/vnd.amazon.eventstream`), as Bedrock streams them."""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any

_STRING = 7  # header value type: UTF-8 string


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message: prelude (total length, headers length, CRC), headers, payload, CRC of all before it."""
    encoded = b"".join(
        struct.pack("!B", len(name)) + name + struct.pack("!BH", _STRING, len(value)) + value
        for name, value in ((k.encode(), v.encode()) for k, v in headers.items())
    )
    prelude = struct.pack("!II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def chunk_event(body: dict[str, Any]) -> bytes:
    """A `chunk` event whose payload carries `body` as base64 JSON, like InvokeModelWithResponseStream."""
    payload = {"bytes": base64.b64encode(json.dumps(body).encode()).decode()}
    headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def exception_event(exception_type: str, message: str) -> bytes:
    """An exception message (e.g. `modelStreamErrorException`); boto3 raises it mid-iteration."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"message": message}).encode())

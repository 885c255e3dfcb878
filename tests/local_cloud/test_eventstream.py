"""The event-stream encoder, checked by botocore's own decoder."""

from __future__ import annotations

import base64
import json

from botocore.eventstream import EventStreamBuffer

from lambdallm.local_cloud.eventstream import chunk_event, encode_message, exception_event


def decode(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def test_messages_round_trip_through_botocores_decoder() -> None:
    data = encode_message({":message-type": "event", "x": "é"}, b"payload") + encode_message({}, b"")
    assert decode(data) == [({":message-type": "event", "x": "é"}, b"payload"), ({}, b"")]


def test_a_chunk_carries_base64_json_like_bedrock() -> None:
    ((headers, payload),) = decode(chunk_event({"outputText": "hi", "index": 0}))
    assert headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert json.loads(base64.b64decode(json.loads(payload)["bytes"])) == {"outputText": "hi", "index": 0}


def test_an_exception_message_names_its_type() -> None:
    ((headers, payload),) = decode(exception_event("throttlingException", "slow down"))
    assert headers == {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert json.loads(payload) == {"message": "slow down"}


def test_header_names_and_values_up_to_their_format_limits_round_trip() -> None:
    # A header name's length is one unsigned byte (up to 255), a string value's two (botocore reads them so).
    headers = {"n" * 255: "v" * 40000, ":message-type": "event"}
    assert decode(encode_message(headers, b"{}")) == [(headers, b"{}")]

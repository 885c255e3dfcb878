"""The backend's stream events as the proxy reads them: what arrived together goes on together."""

import json

import grpc
import pytest

from lambdallm.proxy.answers import Completion, joined_events
from lambdallm.proxy.errors import ProxyError
from llm_wire.tools import ToolCallPiece

DONE = {
    "type": "done",
    "model": "m",
    "input_tokens": 3,
    "output_tokens": 4,
    "finish_reason": "stop",
    "request_id": "r",
}


def lines(*events: dict) -> list[bytes]:
    return [json.dumps(event).encode() + b"\n" for event in events]


def text(piece: str) -> dict:
    return {"type": "text", "text": piece}


def test_a_run_of_text_pieces_is_one_piece_and_other_events_keep_their_place() -> None:
    call = {"type": "tool_call", "index": 0, "id": "c1", "name": "f", "arguments": "{}"}
    events = list(joined_events([*lines(text("Hel"), text("lo"), call, text(","), text(" you"), DONE), b"\n"]))

    assert events[:3] == ["Hello", ToolCallPiece(0, "c1", "f", "{}"), ", you"]
    assert isinstance(events[3], Completion) and events[3].output_tokens == 4
    assert len(events) == 4


def test_text_before_a_failing_line_goes_on_before_the_failure() -> None:
    events = joined_events(lines(text("Hi"), text(" there"), {"type": "error", "status": 504, "detail": "slow"}))

    assert next(events) == "Hi there"
    with pytest.raises(ProxyError) as caught:
        next(events)
    assert (caught.value.code, caught.value.details) == (grpc.StatusCode.DEADLINE_EXCEEDED, "slow")


def test_a_lone_piece_is_passed_as_it_is() -> None:
    assert list(joined_events(lines(text("")))) == [""]
    assert list(joined_events([])) == []

"""Tools through the REST tier to the fake backend, without a model: a request's tools, tool choice and tool turns
reach the backend as sent, and the calls the backend makes come back in the answer and as `tool_call` events."""

import pytest

from tests.fakes.backend import Reply, completion
from tests.sse import parse_events

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [
    {"name": "weather", "description": "The weather in a city.", "parameters": WEATHER},
    {"name": "clock", "parameters": {"type": "object"}},
]
CALL = {"id": "call-1", "name": "weather", "arguments": '{"city": "Oslo"}'}
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "tool_calls": [CALL]},
    {"role": "tool", "content": '{"celsius": 3}', "tool_call_id": "call-1"},
    {"role": "assistant", "content": "Let me check the time too.", "tool_calls": [CALL | {"id": "call-2"}]},
    {"role": "tool", "content": "noon", "tool_call_id": "call-2"},
]
STREAM = {"Accept": "text/event-stream"}
ASK = {"messages": ROUND_TRIP[:1], "tools": TOOLS, "max_tokens": 9}
# The backend calls two tools, the first in two pieces: the first piece of a call has its id and name.
PIECES = [
    {"type": "tool_call", "index": 0, "id": "call-1", "name": "weather", "arguments": '{"city": '},
    {"type": "tool_call", "index": 1, "id": "call-2", "name": "clock", "arguments": "{}"},
    {"type": "tool_call", "index": 0, "arguments": '"Oslo"}'},
]
CALLED = [CALL, {"id": "call-2", "name": "clock", "arguments": "{}"}]


def called(request_id: str) -> list[dict]:
    done = completion("", request_id, text="", finish_reason="tool_calls") | {"type": "done"}
    del done["text"]
    return [*PIECES, done]


@pytest.mark.parametrize("choice", ["auto", "required", "none", {"name": "clock"}])
async def test_tools_their_choice_and_tool_turns_reach_the_backend_as_sent(http, fake, choice):
    body = {"messages": ROUND_TRIP, "tools": TOOLS, "tool_choice": choice, "max_tokens": 9}

    response = await http.post("/query", json=body)

    assert response.status_code == 200, response.text
    tools = [TOOLS[0], TOOLS[1] | {"description": ""}]
    assert fake.requests[-1][1] == body | {"tools": tools}


async def test_the_backend_s_calls_are_the_answer_s_tool_calls(http, fake):
    fake.replies.append(Reply(events=called("calls-1")))

    response = await http.post("/query", json=ASK)

    assert response.status_code == 200, response.text
    assert response.json()["tool_calls"] == CALLED
    assert response.json()["finish_reason"] == "tool_calls"


async def test_a_streamed_call_is_tool_call_events_and_the_done_event_s_tool_calls(http, fake):
    fake.replies.append(Reply(events=called("calls-2")))

    response = await http.post("/query", json=ASK, headers=STREAM)

    assert response.status_code == 200, response.text
    events = parse_events(response.text)
    assert [(kind, data) for kind, data in events[:-1]] == [
        ("tool_call", {"index": 0, "id": "call-1", "name": "weather", "arguments": '{"city": '}),
        ("tool_call", {"index": 1, "id": "call-2", "name": "clock", "arguments": "{}"}),
        ("tool_call", {"index": 0, "arguments": '"Oslo"}'}),
    ]
    kind, done = events[-1]
    assert (kind, done["tool_calls"], done["finish_reason"], done["text"]) == ("done", CALLED, "tool_calls", "")

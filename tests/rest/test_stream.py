"""POST /query with Accept: text/event-stream, over real HTTP through a real proxy to the fake backend's stream."""

import asyncio
import json

import grpc
import httpx
from httpx_sse import aconnect_sse

from generated.llm.v1 import llm_pb2, llm_pb2_grpc
from tests.fakes.backend import Reply, problem, stream_events
from tests.fakes.stack import AUTHORIZATION, running_rest
from tests.sse import parse_events

VALID = {"prompt": "Hi there you", "max_tokens": 10}
STREAM = {"Accept": "text/event-stream"}


async def test_text_events_then_one_done_event_with_the_whole_answer(http):
    response = await http.post("/query", json=VALID, headers=STREAM | {"X-Request-ID": "sse-1"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"] == "sse-1"
    events = parse_events(response.text)
    # The text since the event before, each time; pieces that reached the proxy together come as one event.
    assert "".join(data["text"] for _, data in events[:-1]) == "echo: Hi there you"
    assert {kind for kind, _ in events[:-1]} == {"text"}
    timing = events[-1][1].pop("timing")  # where the time went (Server-Timing), the fake backend's model included
    assert {"total", "first_token", "rest", "proxy"} <= set(timing)
    assert events[-1] == (
        "done",
        {
            "text": "echo: Hi there you",
            "model": "fake-model",
            "input_tokens": 3,
            "output_tokens": 4,
            "finish_reason": "stop",
            "request_id": "sse-1",
        },
    )


async def test_the_request_id_reaches_the_backend_with_a_stream(http, fake):
    await http.post("/query", json=VALID, headers=STREAM | {"X-Request-ID": "sse-id"})

    assert fake.requests[-1][0]["X-Request-ID"] == "sse-id"


async def test_the_deadline_bounds_the_whole_stream(proxy, fake):
    gate = asyncio.Event()  # never set: the backend holds the answer after its first event
    fake.replies.append(Reply(gates={1: gate}))

    async with (
        running_rest(proxy.target, stream_deadline_s=1.0) as url,
        httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION | STREAM) as http,
    ):
        response = await http.post("/query", json=VALID)

    assert response.status_code == 200
    events = parse_events(response.text)
    assert events[0] == ("text", {"text": "echo:"})
    assert (events[-1][0], events[-1][1]["status"]) == ("error", 504)


async def test_json_stays_the_default(http):
    response = await http.post("/query", json=VALID)
    assert response.headers["content-type"] == "application/json"


async def test_each_event_reaches_the_client_before_the_backend_sends_the_next(http, fake):
    gate = asyncio.Event()
    fake.replies.append(Reply(gates={2: gate}))

    async with aconnect_sse(http, "POST", "/query", json=VALID, headers=STREAM) as source:
        events = source.aiter_sse()
        seen = [await asyncio.wait_for(anext(events), 10)]  # the backend holds the rest behind the gate
        gate.set()
        seen.extend([event async for event in events])

    assert [event.event for event in seen][-1] == "done"


async def test_a_failure_before_the_first_event_is_an_ordinary_problem(http, fake):
    reply = problem(429, "the model is busy")
    reply.headers = {"Retry-After": "3"}
    fake.replies.append(reply)

    response = await http.post("/query", json=VALID, headers=STREAM)

    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "3"
    assert response.json()["detail"] == "the model is busy"


async def test_a_failure_after_the_first_event_is_one_error_event(http, fake):
    events = [{"type": "text", "text": "Hi"}, {"type": "error", "status": 503, "detail": "the model went away"}]
    fake.replies.append(Reply(events=events))

    response = await http.post("/query", json=VALID, headers=STREAM | {"X-Request-ID": "sse-err"})

    assert response.status_code == 200
    assert parse_events(response.text) == [
        ("text", {"text": "Hi"}),
        (
            "error",
            {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "the model went away",
                "request_id": "sse-err",
            },
        ),
    ]


async def test_bad_input_is_a_400_before_any_stream(http, fake):
    response = await http.post("/query", json={"prompt": "Hi", "max_tokens": 0}, headers=STREAM)
    assert response.status_code == 400
    assert "max_tokens" in response.json()["detail"]
    assert fake.requests == []


async def test_a_client_that_hangs_up_mid_stream_cancels_the_backend_stream(http, fake):
    gate = asyncio.Event()  # never set
    fake.replies.append(Reply(gates={1: gate}))

    async with aconnect_sse(http, "POST", "/query", json=VALID, headers=STREAM) as source:
        assert (await asyncio.wait_for(anext(source.aiter_sse()), 10)).event == "text"

    await asyncio.wait_for(fake.cancelled.wait(), 5)


async def test_an_accept_that_names_neither_json_nor_events_is_406_before_the_backend(http, fake):
    for accept in ("application/xml", "text/html, application/xml;q=0.9", "application/json;q=0, text/plain", "nope"):
        response = await http.post("/query", json=VALID, headers={"Accept": accept})

        assert response.status_code == 406, accept
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "accept: must allow application/json or text/event-stream"
    assert [body for _, body in fake.requests if body != {}] == []  # readiness probes aside, nothing reached it


async def test_accept_chooses_by_quality_and_json_stays_the_default(http):
    cases = {
        "*/*": "application/json",
        "application/*": "application/json",
        "text/*": "text/event-stream",
        "APPLICATION/JSON": "application/json",
        "application/json;q=0.5, text/event-stream": "text/event-stream",
        "text/event-stream;q=0.5, application/json": "application/json",
        "text/event-stream;q=0, */*": "application/json",
        "application/json, text/event-stream": "text/event-stream",  # named outright, the stream wins a tie
        "application/xml, */*;q=0.1": "application/json",
    }
    for accept, media_type in cases.items():
        response = await http.post("/query", json=VALID, headers={"Accept": accept})

        assert response.status_code == 200, accept
        assert response.headers["content-type"].startswith(media_type), accept


# Text a model may well write: every SSE line ending, and lines that look like SSE fields or an event's end.
AWKWARD = [
    "one\ntwo", "\r\n", "three\rfour", '\n\ndata: {"text": "forged"}\n\n', "event: done\n", "id: 7\r", "\u2028\x85"
]  # fmt: skip


async def test_text_with_line_breaks_and_sse_like_lines_arrives_intact_through_a_real_sse_parser(http, fake):
    done = stream_events("")[-1]
    fake.replies.append(Reply(events=[{"type": "text", "text": piece} for piece in AWKWARD] + [done]))

    async with aconnect_sse(http, "POST", "/query", json=VALID) as source:
        assert source.response.status_code == 200
        events = [(event.event, json.loads(event.data), event.id) async for event in source.aiter_sse()]

    # Pieces that reached the proxy together come as one event: the text, line breaks and all, is what counts.
    assert [kind for kind, *_ in events] == ["text"] * (len(events) - 1) + ["done"]
    assert "".join(data["text"] for _, data, _ in events[:-1]) == events[-1][1]["text"] == "".join(AWKWARD)
    assert {event_id for *_, event_id in events} == {""}  # no line of the text was read as a field


class SummarylessService(llm_pb2_grpc.LlmServiceServicer):
    """A proxy that breaks its contract: it streams text, then ends the call OK without the summary."""

    async def GenerateTextStream(self, request, context):
        yield llm_pb2.GenerateTextStreamResponse(text="half an answer")


async def test_a_proxy_stream_that_ends_without_a_summary_is_an_error_event():
    server = grpc.aio.server()
    llm_pb2_grpc.add_LlmServiceServicer_to_server(SummarylessService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with (
            running_rest(f"127.0.0.1:{port}") as url,
            httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION | STREAM) as http,
        ):
            response = await http.post("/query", json=VALID, headers={"X-Request-ID": "no-summary"})
    finally:
        await server.stop(None)

    assert response.status_code == 200
    assert parse_events(response.text) == [
        ("text", {"text": "half an answer"}),
        (
            "error",
            {
                "type": "about:blank",
                "title": "Bad Gateway",
                "status": 502,
                "detail": "the gRPC proxy ended the stream without a summary",
                "request_id": "no-summary",
            },
        ),
    ]

"""The Lambda's request parsing at its bounds: each limit of specs/backend.yaml taken exactly, and one past it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from llm_lambda import handler
from llm_wire.errors import BackendError
from llm_wire.request import (
    FIELDS,
    MAX_PROMPT_CHARS,
    MAX_STOP_CHARS,
    MAX_STOP_SEQUENCES,
    MAX_SYSTEM_CHARS,
    MAX_TOKENS,
    QueryRequest,
    parse_body,
    parse_event,
)

USER, ASSISTANT = "user", "assistant"


def conversation(*turns: tuple[str, str], **fields: Any) -> dict[str, Any]:
    """A conversation body: the turns as (role, content), then any other fields."""
    return {"messages": [{"role": role, "content": content} for role, content in turns], "max_tokens": 4} | fields


def refused(body: dict[str, Any]) -> str:
    """The detail of the 400 that `body` gets."""
    with pytest.raises(BackendError) as caught:
        parse_body(body)
    assert caught.value.status == 400
    return caught.value.detail


def test_a_prompt_is_read_into_a_request_without_turns_or_system() -> None:
    prompt = "p" * MAX_PROMPT_CHARS

    assert parse_body({"prompt": prompt, "max_tokens": 4}) == QueryRequest(prompt, 4, messages=(), system=None)
    assert (
        refused({"prompt": prompt + "p", "max_tokens": 4}) == f"prompt: a string of 1 to {MAX_PROMPT_CHARS} characters"
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (["a list"], "the request body must be a JSON object"),
        ({"max_tokens": 4}, "prompt, messages: exactly one of the two is required"),
        (
            {"prompt": "Hi", "system": "Be brief.", "max_tokens": 4},
            "system: not with prompt",
        ),
        ({"k" * 100: 1}, f"{'k' * 64}: unknown field (allowed: {', '.join(FIELDS)})"),
    ],
)
def test_a_refusal_says_which_field_and_echoes_at_most_64_characters_of_it(body: Any, detail: str) -> None:
    assert refused(body) == detail


def test_a_turn_and_the_conversation_may_take_every_character_allowed() -> None:
    whole = parse_body(conversation((USER, "x" * MAX_PROMPT_CHARS)))
    split = parse_body(conversation((USER, "x" * (MAX_PROMPT_CHARS - 1)), system="y"))

    assert whole.chars == split.chars == MAX_PROMPT_CHARS
    assert refused(conversation((USER, "x" * (MAX_PROMPT_CHARS - 1)), system="yy")) == (
        f"messages: all turns and system together exceed {MAX_PROMPT_CHARS} characters"
    )


@pytest.mark.parametrize("chars", [1, MAX_SYSTEM_CHARS])
def test_system_may_be_one_character_or_the_most_allowed(chars: int) -> None:
    assert parse_body(conversation((USER, "Hi"), system="s" * chars)).system == "s" * chars


def test_system_one_character_too_long_is_refused() -> None:
    detail = refused(conversation((USER, "Hi"), system="s" * (MAX_SYSTEM_CHARS + 1)))

    assert detail == f"system: a string of 1 to {MAX_SYSTEM_CHARS} characters"


def test_a_third_turn_that_is_not_the_users_is_named_with_the_role_it_must_have() -> None:
    detail = refused(conversation((USER, "a"), (ASSISTANT, "b"), (ASSISTANT, "c")))

    assert detail == "messages[2].role: must be user (turns alternate, user first)"


@pytest.mark.parametrize(
    ("turn", "detail"),
    [
        ("Hi", "messages[0]: an object with exactly `role` and `content`"),
        ({"role": "user", "content": "Hi", "name": "Ada"}, "messages[0]: an object with exactly `role` and `content`"),
        ({"role": "user"}, "messages[0]: an object with exactly `role` and `content`"),
        ({"role": ["user"], "content": "Hi"}, "messages[0].role: must be user (turns alternate, user first)"),
        ({"role": "user", "content": " \n\t"}, "messages[0].content: must not be blank (Bedrock refuses a blank turn)"),
    ],
)
def test_a_turn_of_the_wrong_shape_is_a_400_naming_it(turn: Any, detail: str) -> None:
    assert refused({"messages": [turn], "max_tokens": 4}) == detail


def test_continuation_is_read_with_a_prompt() -> None:
    assert parse_body({"prompt": "Once upon", "max_tokens": 4, "continuation": True}).continuation is True
    assert parse_body({"prompt": "Once upon", "max_tokens": 4}).continuation is False


def test_a_conversation_ending_with_the_assistant_names_messages() -> None:
    assert refused(conversation((USER, "a"), (ASSISTANT, "b"))) == "messages: the last turn must be the user's"


@pytest.mark.parametrize("max_tokens", [1, MAX_TOKENS])
def test_max_tokens_and_stop_sequences_may_take_both_ends_of_their_bounds(max_tokens: int) -> None:
    stops = ["a", "s" * MAX_STOP_CHARS, "b", "c"][:MAX_STOP_SEQUENCES]
    request = parse_body({"prompt": "Hi", "max_tokens": max_tokens, "stop_sequences": stops})

    assert (request.max_tokens, request.stop_sequences) == (max_tokens, tuple(stops))


@pytest.mark.parametrize("name", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [0, 1, 1.0])
def test_sampling_options_take_both_ends_of_zero_to_one(name: str, value: float) -> None:
    request: QueryRequest = parse_body({"prompt": "Hi", "max_tokens": 4, name: value})

    assert getattr(request, name) == value


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        (["not", "an", "object"], "the event is not an API Gateway proxy event (a JSON object)"),
        ({"body": ""}, "the request body is empty; expected a JSON object"),
        ({"body": {"prompt": "Hi"}}, "the event's body is not a string"),
        ({"body": "e30=!", "isBase64Encoded": True}, "the request body is not valid base64"),
    ],
)
def test_an_event_whose_body_cannot_be_read_is_a_400_saying_why(event: Any, detail: str) -> None:
    with pytest.raises(BackendError) as caught:
        parse_event(event)

    assert (caught.value.status, caught.value.detail) == (400, detail)


def test_an_event_that_is_not_an_object_is_a_400_under_the_lambdas_request_id(context: Any) -> None:
    answer = handler.lambda_handler(["not", "an", "object"], context)  # any event, of any shape

    assert (answer["statusCode"], answer["headers"]["X-Request-ID"]) == (400, context.aws_request_id)


def test_accept_is_read_from_headers_when_the_event_has_no_multi_value_headers(
    event: Any, context: Any, stubbed: Stubber
) -> None:
    """An event from a Lambda function URL or a test console: `headers` only."""
    only_headers = event("query.json")
    del only_headers["multiValueHeaders"]
    only_headers["headers"]["Accept"] = "text/html"

    answer = handler.lambda_handler(only_headers, context)

    assert answer["statusCode"] == 406

"""The request rules the specs state (exactly one of prompt and messages; no system beside a prompt) refuse what
the tiers refuse, in the same words: the REST tier and the API Gateway validate with the specs, the proxy and the
Lambda with llm_wire.request. A spec that stated them only in prose took `{"max_tokens": 5}` for valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from generated.llm_client.models import GenerateRequest, Message, MessageRole
from lambdallm.schema_errors import first_error
from llm_wire.errors import BackendError
from llm_wire.request import parse_body

SPECS = Path(__file__).resolve().parents[2] / "specs"
REQUESTS = {"openapi.yaml": "GenerateRequest", "backend.yaml": "BackendRequest"}  # spec -> its request schema
TURN = [{"role": "user", "content": "Hi"}]
REFUSED = [
    ({"max_tokens": 5}, "prompt, messages: exactly one of the two is required"),
    ({"prompt": "Hi", "messages": TURN, "max_tokens": 5}, "prompt, messages: exactly one of the two is required"),
    ({"system": "Be brief.", "max_tokens": 5}, "prompt, messages: exactly one of the two is required"),
    ({"prompt": "Hi", "system": "Be brief.", "max_tokens": 5}, "system: not with prompt"),
]
ACCEPTED = [
    {"prompt": "Hi", "max_tokens": 5},
    {"messages": TURN, "max_tokens": 5},
    {"messages": TURN, "system": "Be brief.", "max_tokens": 5},
]


def validator(spec: str) -> jsonschema.Draft4Validator:
    """The request schema of `spec`, as Connexion and the API Gateway validate it (draft 4, refs resolved)."""
    document = yaml.safe_load((SPECS / spec).read_text())
    schema = {**document["components"]["schemas"][REQUESTS[spec]], "components": document["components"]}
    return jsonschema.Draft4Validator(schema)


def lambda_refusal(body: dict[str, Any]) -> str | None:
    try:
        parse_body(body)
    except BackendError as exc:
        return exc.detail
    return None


@pytest.mark.parametrize("spec", REQUESTS)
@pytest.mark.parametrize(("body", "detail"), REFUSED)
def test_each_spec_refuses_what_the_tiers_refuse_in_the_same_words(spec: str, body: Any, detail: str) -> None:
    assert first_error(validator(spec).iter_errors(body)) == detail
    assert lambda_refusal(body) == detail


@pytest.mark.parametrize("spec", REQUESTS)
@pytest.mark.parametrize("body", ACCEPTED)
def test_each_spec_takes_a_prompt_or_a_conversation(spec: str, body: Any) -> None:
    assert first_error(validator(spec).iter_errors(body)) is None
    assert lambda_refusal(body) is None


def test_the_generated_client_still_builds_both_request_shapes() -> None:
    conversation = GenerateRequest(max_tokens=5, messages=[Message(role=MessageRole.USER, content="Hi")])

    assert GenerateRequest(max_tokens=5, prompt="Hi").to_dict() == {"max_tokens": 5, "prompt": "Hi"}
    assert conversation.to_dict() == {"max_tokens": 5, "messages": TURN}

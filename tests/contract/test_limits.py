"""The request limits the tiers enforce (llm_wire/limits.py) are the ones the specs state: changing a number in
a spec without the code, or the reverse, fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_wire import limits

SPECS = Path(__file__).resolve().parents[2] / "specs"
REQUESTS = {"openapi.yaml": "GenerateRequest", "backend.yaml": "BackendRequest"}  # spec -> its request schema


def _schemas(spec: str) -> dict[str, Any]:
    schemas: dict[str, Any] = yaml.safe_load((SPECS / spec).read_text())["components"]["schemas"]
    return schemas


@pytest.mark.parametrize("spec", REQUESTS)
def test_each_limit_of_a_request_is_the_one_its_spec_states(spec: str) -> None:
    schemas = _schemas(spec)
    request = schemas[REQUESTS[spec]]["properties"]
    stated = {
        "MAX_PROMPT_CHARS": request["prompt"]["maxLength"],
        "MAX_MESSAGES": request["messages"]["maxItems"],
        "MAX_SYSTEM_CHARS": request["system"]["maxLength"],
        "MAX_TOKENS": request["max_tokens"]["maximum"],
        "MAX_STOP_SEQUENCES": request["stop_sequences"]["maxItems"],
        "MAX_STOP_CHARS": request["stop_sequences"]["items"]["maxLength"],
        "MAX_MODEL_ID_CHARS": request["model"]["maxLength"],
    }
    assert {name: getattr(limits, name) for name in stated} == stated
    assert request["model"]["pattern"] == limits.MODEL_ID_PATTERN
    # A turn may hold the whole text budget, and the description states that budget in words.
    assert schemas["Message"]["properties"]["content"]["maxLength"] == limits.MAX_PROMPT_CHARS
    assert f"{limits.MAX_PROMPT_CHARS} characters" in schemas[REQUESTS[spec]]["description"]


def test_the_module_names_every_limit_the_test_checks() -> None:
    constants = {name for name in vars(limits) if name.startswith("MAX_")}
    assert constants == {
        "MAX_PROMPT_CHARS",
        "MAX_MESSAGES",
        "MAX_SYSTEM_CHARS",
        "MAX_TOKENS",
        "MAX_STOP_SEQUENCES",
        "MAX_STOP_CHARS",
        "MAX_MODEL_ID_CHARS",
        "MAX_TOOLS",
        "MAX_SCHEMA_CHARS",
        "MAX_TOOLS_CHARS",
    }


def test_the_tool_limits_are_the_ones_the_backend_spec_states() -> None:
    schemas = _schemas("backend.yaml")
    request = schemas["BackendRequest"]
    assert request["properties"]["tools"]["maxItems"] == limits.MAX_TOOLS
    assert schemas["Message"]["properties"]["tool_calls"]["maxItems"] == limits.MAX_TOOLS
    assert schemas["Tool"]["properties"]["description"]["maxLength"] == limits.MAX_SCHEMA_CHARS
    assert f"{limits.MAX_SCHEMA_CHARS} characters" in request["properties"]["json_schema"]["description"]
    assert f"at most {limits.MAX_TOOLS_CHARS} together" in schemas["BackendRequest"]["description"]
    public = _schemas("openapi.yaml")["GenerateRequest"]["properties"]["tools"]["description"]
    assert f"together are at most {limits.MAX_TOOLS_CHARS} characters" in public


def test_the_openai_api_states_the_same_limits() -> None:
    schemas = _schemas("openai.yaml")
    chat, completion = schemas["ChatCompletionRequest"]["properties"], schemas["CompletionRequest"]["properties"]
    stop_list = schemas["Stop"]["oneOf"][1]
    stated = {
        "MAX_PROMPT_CHARS": completion["prompt"]["maxLength"],
        "MAX_TOKENS": chat["max_tokens"]["maximum"],
        "MAX_STOP_SEQUENCES": stop_list["maxItems"],
        "MAX_STOP_CHARS": stop_list["items"]["maxLength"],
    }
    assert {name: getattr(limits, name) for name in stated} == stated
    same = (chat["max_completion_tokens"]["maximum"], completion["max_tokens"]["maximum"])
    assert same == (limits.MAX_TOKENS, limits.MAX_TOKENS)
    assert schemas["ChatMessage"]["properties"]["content"]["anyOf"][0]["maxLength"] == limits.MAX_PROMPT_CHARS
    assert schemas["Stop"]["oneOf"][0]["maxLength"] == limits.MAX_STOP_CHARS
    description = schemas["ChatCompletionRequest"]["description"]
    assert f"{limits.MAX_PROMPT_CHARS} characters" in description
    assert f"{limits.MAX_SYSTEM_CHARS} characters" in description
    assert f"(as JSON text) together at most {limits.MAX_TOOLS_CHARS} characters" in description
    assert f"{limits.MAX_TOKENS} (the most" in chat["max_tokens"]["description"]
    model = schemas["ModelId"]
    assert (model["maxLength"], model["pattern"]) == (limits.MAX_MODEL_ID_CHARS, limits.MODEL_ID_PATTERN)


def test_the_openai_api_is_served_where_its_spec_says() -> None:
    from lambdallm.rest.openai_errors import PREFIX

    server = yaml.safe_load((SPECS / "openai.yaml").read_text())["servers"][0]["url"]
    assert server.endswith(PREFIX)

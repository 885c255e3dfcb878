"""The request limits the tiers enforce (llm_wire/limits.py) are the ones the specs state: changing a number in
a spec without the code, or the reverse, fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_wire import limits
from llm_wire.request import BATCH_HEADER, MAX_BATCH_MS

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


# Free-form JSON Schemas (a tool's parameters, an answer's schema): OpenAPI 3.0 cannot bound them, so the tiers do,
# as JSON text (llm_wire.tools.MAX_SCHEMA_CHARS, checked above against the spec's words).
FREE_FORM = {"parameters", "schema", "json_schema"}
BOUNDED_PATTERN = re.compile(r"\^\[[^\]]+\]\{\d+,\d+\}\$")  # a name's pattern, such as ^[a-zA-Z0-9_-]{1,64}$


def _unbounded(spec: dict[str, Any]) -> list[str]:
    """The fields of the spec's request bodies whose size it does not bound: strings without maxLength, enum or a
    bounded pattern, arrays without maxItems, objects with open properties and no maxProperties."""
    schemas = spec["components"]["schemas"]
    found: list[str] = []

    def walk(schema: Any, path: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(schemas[name], path, seen | {name})
            return
        for alternative in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
            walk(alternative, path, seen)
        kind = schema.get("type")
        if kind == "string" and not ({"maxLength", "enum"} & set(schema) or _bounded(schema.get("pattern"))):
            found.append(path)
        if kind == "array":
            if "maxItems" not in schema:
                found.append(path)
            walk(schema.get("items", {}), f"{path}[]", seen)
        if kind == "object" and path.rsplit(".", 1)[-1] not in FREE_FORM:
            if schema.get("additionalProperties", True) is not False and "maxProperties" not in schema:
                found.append(path)
            for name, field in schema.get("properties", {}).items():
                walk(field, f"{path}.{name}", seen)
            if isinstance(schema.get("additionalProperties"), dict):
                walk(schema["additionalProperties"], f"{path}.*", seen)

    for route, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            for media in content.values():
                walk(media["schema"], f"{method.upper()} {route}", frozenset())
    return found


def _bounded(pattern: str | None) -> bool:
    return pattern is not None and BOUNDED_PATTERN.fullmatch(pattern) is not None


@pytest.mark.parametrize("spec", ["openapi.yaml", "openai.yaml", "backend.yaml"])
def test_every_field_of_a_request_is_bounded_by_its_spec(spec: str) -> None:
    # Ignored fields included: a field the tiers do not read is still read, parsed and held by each of them.
    assert _unbounded(yaml.safe_load((SPECS / spec).read_text())) == []


def test_an_unbounded_field_is_found() -> None:
    # The walk above sees through references, alternatives, items and nested properties.
    spec = {
        "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/A"}}}}}}},
        "components": {"schemas": {"A": {"type": "object", "additionalProperties": False, "properties": {
            "ok": {"type": "string", "pattern": "^[a-z]{1,8}$"},
            "turns": {"type": "array", "maxItems": 2, "items": {"anyOf": [{"type": "string", "maxLength": 4}, {
                "type": "object", "additionalProperties": False, "properties": {"refusal": {"type": "string"}}}]}},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
            "schema": {"type": "object"},
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
        }}}},
    }  # fmt: skip

    assert _unbounded(spec) == ["POST /x.turns[].refusal", "POST /x.tags", "POST /x.meta", "POST /x.meta.*"]


def test_the_batch_header_is_the_one_the_backend_spec_states() -> None:
    operation = yaml.safe_load((SPECS / "backend.yaml").read_text())["paths"]["/query/stream"]["post"]
    (batch,) = [parameter for parameter in operation["parameters"] if parameter["name"] == BATCH_HEADER]
    assert (batch["in"], batch["schema"]["minimum"], batch["schema"]["maximum"]) == ("header", 0, MAX_BATCH_MS)

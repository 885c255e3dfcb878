"""Every example in the public spec is valid against its own schema, and an SSE example is framed as the REST tier
frames its events (Swagger UI, Postman and Schemathesis send or show them as they are).

That the running chain accepts every example request is tests/e2e/test_spec_examples.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from lambdallm.rest.llm import server_sent_event
from tests.sse import parse_events

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.yaml"
# Each SSE event type's `data` schema (the 200 answer's description).
EVENT_SCHEMAS = {"text": "StreamText", "done": "GenerateResponse", "error": "Problem"}


def resolved(node: Any, document: dict[str, Any]) -> Any:
    """`node` with every local `$ref` replaced by what it points to (the spec has no recursive schema)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolved(target, document)
        return {key: resolved(value, document) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(value, document) for value in node]
    return node


def examples(node: Any, where: str = "") -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example value, its schema) for every example of a media type, a parameter or a schema."""
    if isinstance(node, dict):
        if "schema" in node:  # a media type or a parameter
            if "example" in node:
                yield where, node["example"], node["schema"]
            for name, example in node.get("examples", {}).items():
                yield f"{where}/examples/{name}", example["value"], node["schema"]
        elif "example" in node and "type" in node:  # a schema's own example
            yield where, node["example"], node
        for key, value in node.items():
            yield from examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from examples(value, f"{where}/{index}")


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return document


def _all_examples() -> list[tuple[str, Any, dict[str, Any]]]:
    document = _document()
    return list(examples(resolved(document["paths"], document), "paths"))


def _schema(name: str) -> dict[str, Any]:
    document = _document()
    schema: dict[str, Any] = resolved(document["components"]["schemas"][name], document)
    return schema


def test_the_spec_has_the_examples_a_user_needs() -> None:
    found = {where for where, _, _ in _all_examples()}
    for name in ("prompt", "conversation", "stream"):
        assert f"paths//query/post/requestBody/content/application/json/examples/{name}" in found
    assert any("text/event-stream/examples/" in where for where in found)
    for status in ("400", "401", "406", "413", "415", "429", "502", "503", "504"):
        assert any(f"/query/post/responses/{status}/content/" in where for where in found), status


@pytest.mark.parametrize(("where", "value", "schema"), _all_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_example_is_valid_against_its_schema(where: str, value: Any, schema: dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in OAS30Validator(schema).iter_errors(value)]
    assert not errors, f"{where}: {errors}"


def test_every_request_example_has_exactly_one_of_prompt_and_messages() -> None:
    """The rule the schema states only in words: the first example is the body Swagger UI's "Try it out" sends."""
    document = _document()
    body = document["paths"]["/query"]["post"]["requestBody"]["content"]["application/json"]
    for name, example in body["examples"].items():
        value = example["value"]
        assert ("prompt" in value) != ("messages" in value), name
        assert "system" not in value or "messages" in value, name
        turns = [turn["role"] for turn in value.get("messages", [])]
        assert turns == ["user", "assistant"] * (len(turns) // 2) + ["user"] * (len(turns) % 2), name


def test_every_stream_example_is_framed_as_the_rest_tier_frames_itsparse_events() -> None:
    streams = [(where, value) for where, value, _ in _all_examples() if "/text/event-stream/" in where]
    assert streams
    for where, stream in streams:
        events = parse_events(stream)
        assert stream == b"".join(server_sent_event(event, data) for event, data in events).decode(), where
        *texts, (last, _) = events
        assert {event for event, _ in texts} == {"text"} and last in ("done", "error"), where
        for event, data in events:
            errors = list(OAS30Validator(_schema(EVENT_SCHEMAS[event])).iter_errors(data))
            assert not errors, f"{where}: {event}: {errors}"
        if last == "done":
            assert events[-1][1]["text"] == "".join(data["text"] for _, data in texts), where


def _openai_examples() -> list[tuple[str, Any, dict[str, Any]]]:
    document: dict[str, Any] = yaml.safe_load(SPEC.with_name("openai.yaml").read_text())
    return list(examples(resolved(document["paths"], document), "paths"))


def test_the_openai_spec_has_an_example_of_each_generation() -> None:
    found = {where for where, _, _ in _openai_examples()}
    assert "paths//chat/completions/post/requestBody/content/application/json/examples/chat" in found
    assert "paths//completions/post/requestBody/content/application/json/examples/prompt" in found


@pytest.mark.parametrize(
    ("where", "value", "schema"), _openai_examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_openai_example_is_valid_against_its_schema(where: str, value: Any, schema: dict[str, Any]) -> None:
    test_every_example_is_valid_against_its_schema(where, value, schema)

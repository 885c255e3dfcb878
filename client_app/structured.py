"""BedREST's structured answers (`--json-schema FILE`): each prompt asks for JSON that follows the schema; the answer
is parsed, checked against the schema here too, and printed as the object it is."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import jsonschema

from client_app.llm import ClientError, RestClient, generate
from generated.llm_client.models import GenerateRequest, GenerateRequestJsonSchema, Message, MessageRole
from generated.llm_client.types import UNSET


def load_schema(path: Path) -> dict[str, Any]:
    """The JSON Schema in `path`; a ClientError names what is wrong with it."""
    try:
        schema = json.loads(path.read_text())
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as exc:
        raise ClientError(f"{path}: not a JSON Schema ({getattr(exc, 'message', exc)})") from exc
    if not isinstance(schema, dict):
        raise ClientError(f"{path}: not a JSON Schema (an object)")
    return schema


def structured(client: RestClient, prompt: str, schema: dict[str, Any], max_tokens: int, model: str = "") -> Any:
    """The object the model answers `prompt` with, following `schema`; a ClientError if it does not."""
    body = GenerateRequest(
        messages=[Message(role=MessageRole.USER, content=prompt)],
        max_tokens=max_tokens,
        model=model or UNSET,
        json_schema=GenerateRequestJsonSchema.from_dict(schema),
    )
    reply = generate(client, body)
    try:
        value = json.loads(reply.text)
        jsonschema.validate(value, schema)
    except ValueError as exc:
        raise ClientError(f"the answer is not JSON ({reply.finish_reason}): {reply.text[:200]}") from exc
    except jsonschema.ValidationError as exc:
        raise ClientError(f"the answer does not follow the schema: {exc.message}") from exc
    return value


def run_structured(
    client: RestClient,
    schema: dict[str, Any],
    max_tokens: int,
    read_line: Callable[[str], str],
    model: str = "",
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Prompt, print the validated object, until `quit` or end of input; 1 if any answer failed, else 0."""
    status = 0
    while True:
        try:
            line = read_line("you> ").strip()
        except EOFError:
            return status
        if line == "quit":
            return status
        if not line:
            continue
        try:
            print(json.dumps(structured(client, line, schema, max_tokens, model), indent=2), file=out, flush=True)
        except ClientError as exc:
            print(f"bedrest: {exc}", file=err, flush=True)
            status = 1

"""JSON Schema checks that cost microseconds on valid input, with jsonschema's judgement on invalid input.

jsonschema interprets a schema on every call: about 200 us for a three-field /query body, a seventh of the REST
tier's CPU per request (issue 28). fastjsonschema compiles the same schema once into Python code that answers
valid or not in about 10 us. Each check runs the compiled code first; an instance it accepts is valid, and only an
instance it refuses goes on to jsonschema, which stays the judge: it names the field and the rule (schema_errors),
and an instance it finds valid after all is valid. tests/rest/test_schema_check.py holds the two to agreement on
the specs' schemas.

OpenAPI 3.0's `nullable` is not JSON Schema: Connexion lets null pass a nullable schema's `type` and `enum`, and
the compiled copy says the same in JSON Schema's words. A schema with keywords whose meaning the two libraries
could read differently (`format`, `writeOnly`) is not compiled: jsonschema alone checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
from jsonschema import Draft4Validator, ValidationError

from lambdallm.schema_errors import first_error

DRAFT4 = "http://json-schema.org/draft-04/schema#"
_UNCOMPILED = ("format", "writeOnly", "x-writeOnly")  # left to jsonschema alone
# Keywords whose value is a schema, a list of schemas, or a map of names to schemas (draft 4).
_ONE, _MANY, _NAMED = ("not", "additionalProperties", "additionalItems"), ("allOf", "anyOf", "oneOf"), ("properties",)


class NotCompiled(Exception):
    """The schema holds a keyword that only jsonschema checks."""


class SchemaCheck:
    """One schema's check: `judge` (a jsonschema validator of any draft 4 kind, Connexion's included) and, where the
    schema allows, the compiled fast path in front of it."""

    def __init__(self, judge: Draft4Validator) -> None:
        self.judge = judge
        self._valid = _compile(judge.schema)

    @property
    def compiled(self) -> bool:
        """Whether the schema has the compiled fast path."""
        return self._valid is not None

    def compiled_accepts(self, instance: Any) -> bool:
        """The compiled code's answer alone (False without it): an instance it accepts, the judge accepts too."""
        return self._valid is not None and self._valid(instance)

    def accepts(self, instance: Any) -> bool:
        """Whether `instance` is valid: the compiled code's yes, else the judge's answer."""
        return (self._valid is not None and self._valid(instance)) or self.judge.is_valid(instance)

    def errors(self, instance: Any) -> Iterator[ValidationError]:
        """The judge's violations of `instance`; none, without asking the judge, when the compiled code accepts it."""
        if self._valid is not None and self._valid(instance):
            return iter(())
        return self.judge.iter_errors(instance)  # type: ignore[no-any-return]

    def first_error(self, instance: Any, name: str | None = None) -> str | None:
        """`<field>: <rule>` for the most relevant violation of `instance` (schema_errors), or None if it is valid."""
        return first_error(self.errors(instance), name)


def _compile(schema: Any) -> Callable[[Any], bool] | None:
    try:
        compiled = fastjsonschema.compile({**draft4(schema), "$schema": DRAFT4}, use_default=False)
    except (NotCompiled, fastjsonschema.JsonSchemaDefinitionException):
        return None

    def valid(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return valid


def draft4(schema: Any) -> Any:
    """`schema` (OpenAPI 3.0, its refs resolved) in JSON Schema draft 4's words: a nullable schema's `type` and
    `enum` admit null, as Connexion's validators let them. NotCompiled for a keyword left to jsonschema alone."""
    if not isinstance(schema, dict):
        return schema
    if any(keyword in schema for keyword in _UNCOMPILED):
        raise NotCompiled(next(keyword for keyword in _UNCOMPILED if keyword in schema))
    out = dict(schema)
    for keyword in _ONE:
        if isinstance(out.get(keyword), dict):
            out[keyword] = draft4(out[keyword])
    for keyword in _MANY:
        if isinstance(out.get(keyword), list):
            out[keyword] = [draft4(branch) for branch in out[keyword]]
    for keyword in _NAMED:
        if isinstance(out.get(keyword), dict):
            out[keyword] = {name: draft4(value) for name, value in out[keyword].items()}
    if "items" in out:
        items = out["items"]
        out["items"] = [draft4(item) for item in items] if isinstance(items, list) else draft4(items)
    if schema.get("nullable") or schema.get("x-nullable") is True:  # as Connexion reads them
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
    return out

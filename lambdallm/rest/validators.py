"""Connexion's validators, with errors that name the field and the rule, never the rejected value, and each
schema's check built once (Connexion builds a jsonschema validator per request: a third of its validation cost):
compiled code first, jsonschema only for what it refuses (lambdallm/schema_check.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, NonConformingResponseBody, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP as CONNEXION_VALIDATORS
from connexion.validators import JSONRequestBodyValidator, JSONResponseBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from lambdallm.schema_check import SchemaCheck
from llm_wire import strict_json

_MAX_COMPILED = 256  # the spec's schemas are a few dozen; a bound all the same
_compiled: dict[tuple[int, type], tuple[Any, SchemaCheck]] = {}


def nonconforming(detail: str) -> NonConformingResponseBody:
    """The 500 for an answer that breaks the contract, in Connexion's words, naming the field and the rule (never
    the value: an answer may hold what the caller must not see)."""
    return NonConformingResponseBody(detail=f"Response body does not conform to specification. {detail}")


def compiled(schema: Any, kind: type = Draft4Validator) -> SchemaCheck:
    """The check of `schema` by the `kind` validator (with format checks), built on first use. Connexion hands each
    operation the same schema objects of its spec on every request, so they are the key (held, so that ids stay
    theirs)."""
    key = (id(schema), kind)
    hit = _compiled.get(key)
    if hit is None or hit[0] is not schema:
        if len(_compiled) >= _MAX_COMPILED:
            _compiled.clear()
        judge = kind(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        hit = _compiled[key] = (schema, SchemaCheck(judge))
    return hit[1]


class JsonBodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    """Connexion's JSON body validator, reading the body as strict JSON (UTF-8 whatever the charset says, as
    RFC 8259 requires); Connexion's own message (and its log line) would quote the value."""

    @property
    def _validator(self) -> Draft4Validator:
        return compiled(self._schema, Draft4RequestValidator).judge

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        # Connexion validates a body without Content-Type as JSON, then hands the handler its bytes: a 415 instead,
        # before the body is read (an empty Content-Type is Connexion's own 415).
        if not Headers(scope=scope).get("content-type", "").strip():
            raise UnsupportedMediaTypeProblem(detail="content-type: required, expected ['application/json']")
        return await super().wrap_receive(receive, scope=scope)  # type: ignore[no-any-return]

    async def _parse(self, stream: AsyncIterator[bytes], scope: Scope) -> Any:
        body = b"".join([message async for message in stream])
        if not body:
            return None
        try:
            return strict_json.loads(body)
        except strict_json.JsonRejected as exc:
            raise BadRequestProblem(detail=exc.detail) from exc

    def _validate(self, body: Any) -> None:
        if not self._nullable and body is None:
            raise BadRequestProblem("body: required")
        if (detail := compiled(self._schema, Draft4RequestValidator).first_error(body)) is not None:
            raise BadRequestProblem(detail=detail)


class NamingParameterValidator(ParameterValidator):  # type: ignore[misc]
    """Connexion's parameter validator; its message is jsonschema's whole report, schema and value included."""

    @staticmethod
    def validate_parameter(parameter_type: str, value: Any, param: dict[str, Any], param_name: Any = None) -> Any:
        if value is None or (is_nullable(param) and is_null(value)):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        return compiled(param.get("schema", param)).first_error(value, param.get("name") or param_name)


class JsonResponseValidator(JSONResponseBodyValidator):  # type: ignore[misc]
    """Connexion's JSON response validator, with the schema's check built once (an answer the compiled code accepts
    is not interpreted again), and its refusal naming the field and the rule as the flat path's does (rest/flat.py):
    Connexion's own report, and the warning it logs, quote the answer's value."""

    @property
    def validator(self) -> Draft4Validator:
        return compiled(self._schema, Draft4ResponseValidator).judge

    def _validate(self, body: Any) -> None:
        if (detail := compiled(self._schema, Draft4ResponseValidator).first_error(body)) is not None:
            raise nonconforming(detail)


_NONE = object()


class MediaTypes(MediaTypeDict):  # type: ignore[misc]
    """Connexion's MediaTypeDict, remembering what each media type found: Connexion sorts its keys and matches them
    with fnmatch on every lookup, twice a request. The media type is the client's, so the memory is bounded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._found: dict[str, Any] = {}

    def __getitem__(self, item: str) -> Any:
        found = self._found.get(item, _NONE)
        if found is _NONE:  # not looked up yet
            found = super().__getitem__(item)  # a KeyError for an unknown one, remembered by no one
            if len(self._found) >= _MAX_COMPILED:
                self._found.clear()
            self._found[item] = found
        return found


VALIDATOR_MAP: dict[str, Any] = {
    **CONNEXION_VALIDATORS,
    "parameter": NamingParameterValidator,
    "body": MediaTypes({**CONNEXION_VALIDATORS["body"], "*/*json": JsonBodyValidator}),
    "response": MediaTypes({**CONNEXION_VALIDATORS["response"], "*/*json": JsonResponseValidator}),
}

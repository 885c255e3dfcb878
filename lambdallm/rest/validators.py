"""Connexion's request validators, with errors that name the field and the rule, never the rejected value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP as CONNEXION_VALIDATORS
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator
from llm_lambda import strict_json
from starlette.types import Scope

from lambdallm.schema_errors import first_error


class JsonBodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    """Connexion's JSON body validator, reading the body as strict JSON (UTF-8 whatever the charset says, as
    RFC 8259 requires); Connexion's own message (and its log line) would quote the value."""

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
        if (detail := first_error(self._validator.iter_errors(body))) is not None:
            raise BadRequestProblem(detail=detail)


class NamingParameterValidator(ParameterValidator):  # type: ignore[misc]
    """Connexion's parameter validator; its message is jsonschema's whole report, schema and value included."""

    @staticmethod
    def validate_parameter(parameter_type: str, value: Any, param: dict[str, Any], param_name: Any = None) -> Any:
        if value is None or (is_nullable(param) and is_null(value)):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        schema = param.get("schema", param)
        errors = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).iter_errors(value)
        return first_error(errors, param.get("name") or param_name)


VALIDATOR_MAP: dict[str, Any] = {
    **CONNEXION_VALIDATORS,
    "parameter": NamingParameterValidator,
    "body": MediaTypeDict({**CONNEXION_VALIDATORS["body"], "*/*json": JsonBodyValidator}),
}

"""The REST tier's Connexion validators and security build what depends only on the spec once, not per request."""

from __future__ import annotations

from typing import Any
from unittest import mock

import connexion.security
import yaml
from connexion.json_schema import Draft4RequestValidator

from lambdallm.rest import auth
from lambdallm.rest.app import SPEC
from lambdallm.rest.keyring import KeyRing
from lambdallm.rest.validators import JsonBodyValidator, JsonResponseValidator, NamingParameterValidator, compiled
from lambdallm.settings import RestSettings

DOCUMENT = yaml.safe_load(SPEC.read_text())


def schema(name: str) -> dict[str, Any]:
    return {**DOCUMENT["components"]["schemas"][name], "components": DOCUMENT["components"]}


def test_a_body_schema_is_compiled_once_and_still_names_the_field() -> None:
    request = schema("GenerateRequest")
    first, second = (JsonBodyValidator(schema=request, encoding="utf-8", strict_validation=True) for _ in range(2))
    assert first._validator is second._validator
    assert second._validator.is_valid({"prompt": "Hi", "max_tokens": 1})
    assert not second._validator.is_valid({"prompt": "", "max_tokens": 1})


def test_each_schema_keeps_its_own_compiled_validator() -> None:
    request, response = schema("GenerateRequest"), schema("GenerateResponse")
    first = compiled(request)
    assert compiled(response) is not first
    assert compiled(request) is first  # still cached after another schema was compiled
    assert compiled(request, Draft4RequestValidator) is not first  # and per kind of validator


def test_a_response_schema_is_compiled_once() -> None:
    response = schema("GenerateResponse")
    first, second = (JsonResponseValidator({}, schema=response, encoding="utf-8") for _ in range(2))
    assert first.validator is second.validator


def test_a_header_parameter_is_still_checked_against_its_schema() -> None:
    param = DOCUMENT["components"]["parameters"]["RequestId"]
    assert NamingParameterValidator.validate_parameter("header", "ok-1", param) is None
    detail = NamingParameterValidator.validate_parameter("header", "not ok", param)
    assert detail == "X-Request-ID: must match ^[A-Za-z0-9._:-]+$"


def test_the_key_check_signature_is_read_once() -> None:
    handler = auth.security_map(auth.key_ring(RestSettings(api_keys="k1")))["bearer"]()
    check = auth.key_checker(KeyRing(RestSettings(), (b"k1",)))
    with mock.patch.object(
        connexion.security, "inspect_function_arguments", wraps=connexion.security.inspect_function_arguments
    ) as inspect:
        for _ in range(3):
            assert not handler._accepts_kwarg(check, "required_scopes")
    assert inspect.call_count == 1

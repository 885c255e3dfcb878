"""The local API Gateway's routes from specs/backend.yaml: each method's body schema, the function its Lambda
proxy integration invokes, its transfer mode and timeout, and whether it requires IAM authorization."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lambdallm.local_cloud.gateway_errors import ProblemError
from lambdallm.schema_check import SchemaCheck
from llm_wire import strict_json

DEFAULT_INTEGRATION_TIMEOUT_MS = 29000
_FUNCTION = re.compile(r"\$\{(\w+)\.Arn\}")


@dataclass(frozen=True)
class Route:
    """One method of one resource: its body's schema, the function its integration invokes, how, and how long
    API Gateway waits for it."""

    validator: SchemaCheck | None
    function: str
    streaming: bool
    timeout_s: float
    iam: bool = False  # the method requires AWS_IAM authorization (a security scheme of type awsSigv4)


def load_routes(spec: Path) -> dict[str, dict[str, Route]]:
    """Every path's methods (upper case) and their routes, from the OpenAPI document at `spec`."""
    document = yaml.safe_load(spec.read_text())
    return {
        path: {method.upper(): route(operation, document) for method, operation in operations.items()}
        for path, operations in document["paths"].items()
    }


def route(operation: dict[str, Any], document: dict[str, Any]) -> Route:
    """The route of one OpenAPI operation of `document`."""
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    validator = None
    if "schema" in schema:
        # API Gateway models are JSON Schema draft 4; resolve refs against the whole document.
        resolved = {**schema["schema"], "components": document.get("components", {})}
        validator = SchemaCheck(jsonschema.Draft4Validator(resolved))
    integration = operation.get("x-amazon-apigateway-integration", {})
    uri = integration.get("uri", {})
    found = _FUNCTION.search(uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri))
    streaming = integration.get("responseTransferMode") == "STREAM"
    timeout_s = integration.get("timeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS) / 1000
    schemes = document.get("components", {}).get("securitySchemes", {})
    iam = any(
        schemes.get(name, {}).get("x-amazon-apigateway-authtype") == "awsSigv4"
        for requirement in operation.get("security", document.get("security", []))
        for name in requirement
    )
    return Route(validator, found.group(1) if found else "QueryFunction", streaming, timeout_s, iam)


def validate(validator: SchemaCheck, body: bytes) -> None:
    """Refuse (400, naming the field) a body that is not strict JSON or does not match the route's model."""
    try:
        data = strict_json.loads(body)
    except strict_json.JsonRejected as exc:
        raise ProblemError(400, exc.detail) from exc
    if (detail := validator.first_error(data)) is not None:
        raise ProblemError(400, detail)

"""The local API Gateway's own answers: a problem+json for what it refuses before or instead of the function, and
AWS's 403 for a request it could not authenticate."""

from __future__ import annotations

import json

from starlette.responses import Response

from lambdallm.local_cloud.sigv4 import SignatureError
from llm_wire.problems import PROBLEM_JSON, problem_bytes


class ProblemError(Exception):
    """A request the gateway answers itself with a problem+json, before or instead of the function."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}

    def to_response(self, request_id: str) -> Response:
        """The problem+json answer."""
        headers = {"X-Request-ID": request_id, "x-amzn-RequestId": request_id} | self.headers
        body = problem_bytes(self.status, self.detail, request_id)
        return Response(body, self.status, headers, media_type=PROBLEM_JSON)


def refusal(error: SignatureError, request_id: str) -> Response:
    """API Gateway's own 403 for a request it could not authenticate: `{"message": ...}` and its error type."""
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.error_type}
    return Response(json.dumps({"message": error.message}), 403, headers, media_type="application/json")

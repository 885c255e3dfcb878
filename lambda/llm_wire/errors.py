"""The backend's failures and their HTTP form: one `BackendError` carrying an RFC 9457 problem."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llm_wire.problems import PROBLEM_JSON, problem


@dataclass
class BackendError(Exception):
    """A failure the caller sees as `status` with a problem+json body whose `detail` says what went wrong."""

    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"

    def to_response(self, request_id: str) -> dict[str, Any]:
        """The API Gateway proxy response for this failure."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": PROBLEM_JSON, "X-Request-ID": request_id},
            "body": json.dumps(problem(self.status, self.detail, request_id)),
            "isBase64Encoded": False,
        }

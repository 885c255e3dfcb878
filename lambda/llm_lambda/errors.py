"""The backend's failures and their HTTP form: one `BackendError` carrying an RFC 9457 problem."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass
class BackendError(Exception):
    """A failure the caller sees as `status` with a problem+json body whose `detail` says what went wrong."""

    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}"

    def to_response(self, request_id: str) -> dict[str, Any]:
        """The API Gateway proxy response for this failure."""
        problem = {
            "type": "about:blank",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail,
            "request_id": request_id,
        }
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/problem+json", "X-Request-ID": request_id},
            "body": json.dumps(problem),
            "isBase64Encoded": False,
        }

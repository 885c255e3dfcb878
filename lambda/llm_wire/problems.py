"""RFC 9457 problem documents, as every tier writes them: the one place their shape is decided (standard library
only, so that the Lambda ships it; the REST tier, the proxy's listeners and the local cloud import it too)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

PROBLEM_JSON = "application/problem+json"
# RFC 9110's names where Python's table is older than it (3.13 has them; the Lambda and the tiers may run 3.11).
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title_of(status: int) -> str:
    """The status's reason phrase, as RFC 9110 names it."""
    return _TITLES.get(status) or HTTPStatus(status).phrase


def problem(status: int, detail: str | None = None, request_id: str | None = None, title: str = "") -> dict[str, Any]:
    """A problem document: `about:blank`, the status's own title unless one is given, and the detail and the
    request id when there are any."""
    body: dict[str, Any] = {"type": "about:blank", "title": title or title_of(status), "status": status}
    if detail:
        body["detail"] = detail
    if request_id is not None:
        body["request_id"] = request_id
    return body


def problem_bytes(status: int, detail: str | None = None, request_id: str | None = None, title: str = "") -> bytes:
    """`problem(...)` as the bytes of a JSON body (non-ASCII text as UTF-8)."""
    return json.dumps(problem(status, detail, request_id, title), ensure_ascii=False).encode()

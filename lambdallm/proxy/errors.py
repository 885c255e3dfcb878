"""The proxy's one boundary table: backend HTTP answers and client errors -> gRPC status codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime

import grpc
from botocore.exceptions import BotoCoreError

from lambdallm.proxy.backend_http import BackendHTTPError, ConnectTimeout, Unreachable

# Backend HTTP status -> gRPC code; any other non-200 status is INTERNAL. A 502 is a failure behind the
# backend that retrying will not cure (AccessDenied, a broken function), so it is INTERNAL, which the REST
# tier answers as 502; only a 503 means "down, retry later".
_STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,  # a model the backend does not serve (its detail names the ones it does)
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.INTERNAL,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
# Trailing metadata on every status the proxy writes: its details are for the client, which the REST tier shows
# (lambdallm/rest/problems.py); details without it are the gRPC library's own and stay in the REST tier's log.
ORIGIN_TRAILER = ("lambdallm-origin", "proxy")
# Tells a caller's channel not to retry this answer on another proxy (gRFC A6's pushback; lambdallm/rest/balancing.py).
NO_RETRY = ("grpc-retry-pushback-ms", "-1")
DEFAULT_RETRY_AFTER_S = 1
MAX_RETRY_AFTER_S = 3600

# Transport failures, most specific first: a connect timeout means the backend is unreachable,
# any other timeout means it did not answer in time.
_EXCEPTION_CODES: tuple[tuple[type[BaseException], grpc.StatusCode, str], ...] = (
    (ConnectTimeout, grpc.StatusCode.UNAVAILABLE, "backend connect timed out"),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED, "backend did not answer in time"),
    (Unreachable, grpc.StatusCode.UNAVAILABLE, "backend unreachable"),
    (OSError, grpc.StatusCode.UNAVAILABLE, "backend unreachable"),  # a connection that failed under a request
    (BackendHTTPError, grpc.StatusCode.INTERNAL, "backend request failed"),
    (BotoCoreError, grpc.StatusCode.UNAVAILABLE, "the proxy has no valid AWS credentials to sign with"),
)


class ProxyError(Exception):
    """A failure the proxy reports to its caller as a gRPC status with details."""

    def __init__(self, code: grpc.StatusCode, details: str, retry_after: str | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.retry_after = retry_after


def from_backend_status(status: int, body: bytes, retry_after: str | None = None) -> ProxyError:
    """The ProxyError for a non-200 backend answer; details are the problem's `detail` when present."""
    code = _STATUS_CODES.get(status, grpc.StatusCode.INTERNAL)
    detail = f"backend answered HTTP {status}"
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if isinstance(problem, dict) and isinstance(problem.get("detail"), str) and problem["detail"]:
        detail = problem["detail"]
    elif isinstance(problem, dict) and isinstance(problem.get("message"), str) and problem["message"]:
        # API Gateway's own refusals (403 "Missing Authentication Token", a signature mismatch) say `message`;
        # its first sentence is enough (a mismatch goes on with the canonical request it expected).
        detail = f"backend answered HTTP {status}: {problem['message'].splitlines()[0][:200]}"
    if code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ProxyError(code, detail)
    return ProxyError(code, detail, str(retry_after_seconds(retry_after)))


def retry_after_seconds(value: str | None, now: float | None = None) -> int:
    """A backend's Retry-After (delay-seconds or HTTP-date, RFC 9110) as whole seconds from now, 1..3600;
    the contract promises an integer, and a missing or malformed value becomes the default of 1 s."""
    text = (value or "").strip()
    if text.isascii() and text.isdigit():
        seconds = int(text)
    else:
        try:
            moment = parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER_S
        seconds = int(moment - (time.time() if now is None else now) + 0.999)
    return min(max(seconds, DEFAULT_RETRY_AFTER_S), MAX_RETRY_AFTER_S)


def bad_backend_answer(why: str) -> ProxyError:
    """An INTERNAL error for a 200 answer that breaks the backend contract."""
    return ProxyError(grpc.StatusCode.INTERNAL, f"backend answer breaks the contract: {why}")


@contextmanager
def map_backend_errors() -> Iterator[None]:
    """Translate the backend client's and timeout exceptions raised inside the block into ProxyError. Its details
    say what failed, never the exception's text (the backend's address, the client's internals): that stays its
    __cause__, which the log shows."""
    try:
        yield
    except ProxyError:
        raise
    except Exception as exc:
        for kind, code, text in _EXCEPTION_CODES:
            if isinstance(exc, kind):
                raise ProxyError(code, text) from exc
        raise

"""The Bedrock boundary's one table of failures: botocore's exceptions and Bedrock's error codes as the status and
detail the function answers with (a `BackendError`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionClosedError, ConnectionError, ReadTimeoutError

from llm_wire.errors import BackendError

# Bedrock error code -> (status for our caller, what we tell them). The caller never sees our IAM trouble as
# its own 403: AccessDenied is the backend's misconfiguration, a bad gateway.
CLIENT_ERRORS: dict[str, tuple[int, str | None]] = {
    "ValidationException": (400, None),
    "ThrottlingException": (429, "the model is busy; retry later"),
    "ServiceQuotaExceededException": (429, "the model's quota is exhausted; retry later"),
    "ModelTimeoutException": (504, "the model took too long to answer"),
    "AccessDeniedException": (502, "the backend is not allowed to invoke the model"),
    "ServiceUnavailableException": (503, "the model service is unavailable; retry later"),
    "ModelNotReadyException": (503, "the model is not ready yet; retry later"),
    "ModelStreamErrorException": (502, "the model failed while streaming"),
}


@contextmanager
def map_bedrock_exceptions() -> Iterator[None]:
    """Translate botocore failures inside the block into `BackendError`s, by one table."""
    try:
        yield
    except BackendError:
        raise
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        # A response stream names its exceptions in lower camel case (throttlingException).
        status, detail = CLIENT_ERRORS.get(code[:1].upper() + code[1:], (502, "the model call failed"))
        raise BackendError(status, detail or f"the model rejected the request: {error.get('Message')}") from exc
    except ReadTimeoutError as exc:
        raise BackendError(504, "the model took too long to answer") from exc
    except (ConnectionError, ConnectionClosedError) as exc:
        raise BackendError(503, "the model service cannot be reached; retry later") from exc
    except Exception as exc:
        raise BackendError(502, "the model call failed") from exc

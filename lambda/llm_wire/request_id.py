"""The request-id policy of every tier: a caller's X-Request-ID is kept when it is 1 to 128 characters of
`A-Z a-z 0-9 . _ : -` (safe in a header, a gRPC metadata value and a log line, and short), else a new id is
made. The REST tier, the proxy, the local API Gateway and the function all apply it."""

from __future__ import annotations

import re
import uuid

_KEPT = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def kept(value: object) -> str | None:
    """`value` if it is a request id the tiers keep, else None."""
    return value if isinstance(value, str) and _KEPT.fullmatch(value) else None


def request_id(sent: object) -> str:
    """The caller's id if it is kept, else a new one (32 hexadecimal digits)."""
    return kept(sent) or uuid.uuid4().hex

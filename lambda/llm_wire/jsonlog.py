"""JSON-lines logging, the one formatter of every tier (standard library only, so that the Lambda ships it): one
object per event, with the tier, the request ids and the `extra=` fields as keys."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Callable

# The function's ids of the invocation in progress: the caller's request id and Lambda's own.
request_ids: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("request_ids", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
Ids = Callable[[logging.LogRecord], dict[str, str]]
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)  # json.dumps with arguments builds one per call


def invocation_ids(_record: logging.LogRecord) -> dict[str, str]:
    """The function's: both request ids of the invocation in progress, if any."""
    return request_ids.get() or {}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, `tier`, logger, the ids `ids` gives for the record, the
    message, then the record's `extra=` fields (one of the ids' names there overrides nothing: the ids win)."""

    def __init__(self, tier: str = "lambda", ids: Ids = invocation_ids) -> None:
        super().__init__()
        self.tier, self.ids = tier, ids
        self._second, self._stamp = -1, ""  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        ids = self.ids(record)
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "tier": self.tier,
            "logger": record.name,
            **ids,
            "msg": record.getMessage(),
        }
        event.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in ids})
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(event)


def function_logger(name: str) -> logging.Logger:
    """A logger writing JSON lines to stderr (CloudWatch in AWS), independent of the host's root logger."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger

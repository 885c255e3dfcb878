"""JSON-lines logging for the function: one object per event, tagged with both request ids."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

request_ids: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("request_ids", default=None)

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with the current request ids; `extra=` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "tier": "lambda",
            "logger": record.name,
            **(request_ids.get() or {}),
            "msg": record.getMessage(),
        }
        event.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str, ensure_ascii=False)


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

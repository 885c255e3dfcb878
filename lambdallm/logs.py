"""JSON-lines logging shared by the tiers: one object per event, with the tier and the request id (the formatter
is the Lambda's, llm_wire/jsonlog.py)."""

from __future__ import annotations

import contextvars
import logging
import sys

from llm_wire import jsonlog

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id(record: logging.LogRecord) -> dict[str, str]:
    """A tier's: the record's own `request_id` (extra=) if it has one, else the request in progress's."""
    return {"request_id": getattr(record, "request_id", None) or request_id.get()}


def formatter(tier: str) -> logging.Formatter:
    """The one JSON-lines formatter (llm_wire/jsonlog.py), tagging records with `tier` and the request id."""
    return jsonlog.JsonFormatter(tier, current_request_id)


def configure(tier: str, level: int = logging.INFO) -> None:
    """Send every logger's records to stderr as JSON lines tagged with `tier`."""
    # The lines carry none of a record's caller, thread or process: not looking them up makes each record cheaper
    # (the logging documentation's "Optimization": the caller alone is a walk up the stack per record).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(tier))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Connexion's validators log the rejected value (a whole prompt) before raising; the REST tier logs the
    # problem it answers instead, which names the field and the rule only.
    logging.getLogger("connexion.validators").setLevel(logging.CRITICAL)

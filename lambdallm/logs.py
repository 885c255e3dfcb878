"""JSON-lines logging shared by the tiers: one object per event, with the tier and the request id (the formatter
is the Lambda's, llm_wire/jsonlog.py)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from typing import TextIO

from llm_wire import jsonlog

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# How long a line logged off the loop's thread may wait for the loop to write it.
LOOP_WRITE_S = 0.02


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


class LoopWriter(logging.StreamHandler[TextIO]):
    """A stream handler whose lines only the event loop's thread writes. A record logged on the loop is written at
    once; one logged on another thread waits, at most about LOOP_WRITE_S, for the loop to write it with the others
    that came meanwhile. With no loop running, every line is written at once; `logging.shutdown` writes any left.

    Why: the local cloud's 64 function threads log two lines a request each, and their writes cost the whole
    chain about 13 % of its requests/s (bench/README.md, 4 December): likely each write released the GIL while it
    held the handler's lock, and the threads queued on both. Lambda itself takes a function's output off its hands.
    """

    def __init__(self, stream: TextIO, formatter: logging.Formatter | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.loop = loop
        self.waiting: list[str] = []
        self.ticking = False  # a write is scheduled on the loop

    def emit(self, record: logging.LogRecord) -> None:
        """Called with the handler's lock held (`Handler.handle`)."""
        try:
            line = self.format(record) + self.terminator
        except RecursionError:  # let through, as logging.StreamHandler.emit does
            raise
        except Exception:
            self.handleError(record)
            return
        self.waiting.append(line)
        try:
            if asyncio._get_running_loop() is self.loop or not self.loop.is_running():
                self.flush()
            elif not self.ticking:
                self._schedule()
        except Exception:
            self.handleError(record)

    def _schedule(self) -> None:
        """Have the loop write what waits; if it closed in between, write it here."""
        try:
            self.loop.call_soon_threadsafe(self._tick)
        except RuntimeError:  # the loop is closed
            self.flush()
        else:
            self.ticking = True

    def _tick(self) -> None:
        """On the loop: write what waits, and look again in LOOP_WRITE_S while lines keep coming."""
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            if self.waiting:
                self.flush()
                self.loop.call_later(LOOP_WRITE_S, self._tick)
            else:
                self.ticking = False

    def flush(self) -> None:
        """Write the waiting lines, in the order they were logged, and flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            if self.waiting:
                lines, self.waiting = "".join(self.waiting), []
                self.stream.write(lines)
            self.stream.flush()


def write_on_loop(loop: asyncio.AbstractEventLoop, *loggers: logging.Logger) -> None:
    """Hand the stream handlers of `loggers` (and the root logger's) to `loop`'s thread to write (LoopWriter)."""
    for each in (logging.getLogger(), *loggers):
        each.handlers[:] = [
            LoopWriter(handler.stream, handler.formatter, loop)
            if type(handler) is logging.StreamHandler  # not its subclasses (files, LoopWriters)
            else handler
            for handler in each.handlers
        ]

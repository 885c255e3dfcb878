"""The JSON-lines span exporter for local use: each finished span one line of OTLP-like JSON, appended to a file
that every tier may share (one write per batch, O_APPEND, so lines of several processes never interleave)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to `path`, one JSON object a line (the SDK's own `ReadableSpan.to_json`)."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch in one append."""
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans).encode()
        with self._lock:
            if self._fd < 0:
                return SpanExportResult.FAILURE
            os.write(self._fd, lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

"""The JSON-lines span exporter for local use: each finished span one compact JSON line, appended to a file that
every tier may share (one write per batch, O_APPEND, so lines of several processes never interleave)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode
_kinds: dict[Any, str] = {}  # SpanKind -> its str(), made once each


def span_line(span: ReadableSpan) -> str:
    """The span as one line: the fields and names of the SDK's `ReadableSpan.to_json`, times in nanoseconds since
    the epoch (its own writer, indented with ISO times, took most of the exporter's time), the fixed fields
    formatted here and only the free ones (names, attributes) through the JSON encoder."""
    context, parent, kind = span.context, span.parent, span.kind
    if kind not in _kinds:
        _kinds[kind] = _encode(str(kind))
    ids = f'{{"trace_id":"0x{context.trace_id:032x}","span_id":"0x{context.span_id:016x}"}}' if context else "{}"
    events = span.events
    listed = (
        _encode([{"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})} for e in events])
        if events
        else "[]"
    )
    service = _encode(span.resource.attributes.get("service.name"))
    parent_id = f'"0x{parent.span_id:016x}"' if parent else "null"
    return (
        f'{{"name":{_encode(span.name)},"context":{ids},"kind":{_kinds[kind]},'
        f'"parent_id":{parent_id},'
        f'"start_time":{_encode(span.start_time)},"end_time":{_encode(span.end_time)},'
        f'"status":{{"status_code":"{span.status.status_code.name}"}},'
        f'"attributes":{_encode(dict(span.attributes or {}))},'
        f'"events":{listed},"resource":{{"attributes":{{"service.name":{service}}}}}}}'
    )


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to `path`, one JSON object a line."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch in one append."""
        lines = "".join(span_line(span) + "\n" for span in spans).encode()
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

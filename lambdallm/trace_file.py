"""The JSON-lines span exporter for local use: each finished span one compact JSON line, appended to a file that
every tier may share (one write per batch, O_APPEND, so lines of several processes never interleave)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode  # what orjson refuses: ints past 64 bits
_kinds: dict[Any, str] = {}  # SpanKind -> its str(), made once each
_resources: dict[int, tuple[Any, dict[str, Any]]] = {}  # id(resource) -> (resource, its field), made once each


def span_fields(span: ReadableSpan) -> dict[str, Any]:
    """The span's fields as one line holds them: those of the SDK's `ReadableSpan.to_json`, in its order and with
    its names, times in nanoseconds since the epoch (its own writer, indented with ISO times, took most of the
    exporter's time). A LeanSpan (lambdallm/trace_lean.py) reads the same."""
    context, parent, kind, resource = span.context, span.parent, span.kind, span.resource
    if kind not in _kinds:
        _kinds[kind] = str(kind)
    if id(resource) not in _resources:
        _resources[id(resource)] = resource, {"attributes": {"service.name": resource.attributes.get("service.name")}}
    attributes = span.attributes
    return {
        "name": span.name,
        "context": {"trace_id": f"0x{context.trace_id:032x}", "span_id": f"0x{context.span_id:016x}"}
        if context
        else {},
        "kind": _kinds[kind],
        "parent_id": f"0x{parent.span_id:016x}" if parent else None,
        "start_time": span.start_time,
        "end_time": span.end_time,
        "status": {"status_code": span.status.status_code.name},
        "attributes": attributes if type(attributes) is dict else dict(attributes or {}),
        "events": [
            {"name": e.name, "timestamp": e.timestamp, "attributes": dict(e.attributes or {})} for e in span.events
        ],
        "resource": _resources[id(resource)][1],
    }


def span_line(span: ReadableSpan) -> bytes:
    """The span as one JSON line (orjson's: a tenth of the standard encoder's time)."""
    fields = span_fields(span)
    try:
        return orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        return (_encode(fields) + "\n").encode()


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to `path`, one JSON object a line."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the batch in one append."""
        lines = b"".join(map(span_line, spans))
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

"""The tiers' tracer: spans sampled by the provider's own sampler and handed, once ended, to its exporting span
processor as the SDK's ReadableSpan (what its exporters take), without the SDK's live span.

The SDK's span guards every attribute with a lock, checks each value, and copies itself at its end: about 35 µs
a span here against some 10 for this one, on every request of every tier (docs/tracing.md, "What it costs")."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

SCOPE = InstrumentationScope("lambdallm")
SAMPLED, NOT_SAMPLED = TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)
UNSET = Status(StatusCode.UNSET)


class LeanSpan(trace.Span):
    """A recording span: attributes, events and status kept in plain fields until `end` exports it."""

    def __init__(
        self, tracer: LeanTracer, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind
    ) -> None:
        self._tracer, self._name, self._context, self._parent, self._kind = tracer, name, context, parent, kind
        self._attributes: dict[str, Any] = {}
        self._events: list[Event] = []
        self._status = UNSET
        self._start = time.time_ns()
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._attributes.update(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._events.append(Event(name, attributes, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        self.add_event("exception", {"exception.type": type(exception).__name__}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        tracer = self._tracer
        span = ReadableSpan(
            self._name,
            self._context,
            self._parent,
            tracer.resource,
            self._attributes,
            self._events,
            kind=self._kind,
            status=self._status,
            start_time=self._start,
            end_time=end_time or time.time_ns(),
            instrumentation_scope=SCOPE,
        )
        tracer.processor.on_end(span)


class LeanTracer:
    """Starts LeanSpans under `provider`'s sampler, ids and resource, exported through `processor`."""

    def __init__(self, provider: Any, processor: Any) -> None:
        self.sampler, self.ids, self.resource, self.processor = (
            provider.sampler,
            provider.id_generator,
            provider.resource,
            processor,
        )

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Any] = (),
    ) -> trace.Span:
        """A span, the child of `context`'s current span (None: the current context's), recording when sampled."""
        parent = trace.get_current_span(context).get_span_context()
        parent_context = parent if parent.is_valid else None
        trace_id = parent.trace_id if parent_context else self.ids.generate_trace_id()
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes)
        sampled = result.decision.is_sampled()
        span_context = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            False,
            SAMPLED if sampled else NOT_SAMPLED,
            result.trace_state,
        )
        if not sampled:
            return NonRecordingSpan(span_context)
        span = LeanSpan(self, name, span_context, parent_context, kind)
        if result.attributes:
            span.set_attributes(result.attributes)
        return span

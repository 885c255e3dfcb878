"""The tiers' tracer: spans sampled by the provider's own sampler, kept in plain fields and handed, once ended,
to its exporting span processor as they are: a LeanSpan reads as the SDK's ReadableSpan does, which the file
exporter takes directly and the OTLP exporter gets converted (`AsReadable`).

The SDK's span guards every attribute with a lock, checks each value, and copies itself at its end: about 35 µs
a span here against some 10 for this one, on every request of every tier (docs/tracing.md, "What it costs")."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

SCOPE = InstrumentationScope("lambdallm")  # the scope of the spans the tiers' tracers make
SAMPLED, NOT_SAMPLED = TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)
UNSET = Status(StatusCode.UNSET)
INTERNAL = SpanKind.INTERNAL


class LeanSpan(trace.Span):
    """A recording span: attributes, events and status kept in plain fields until `end` exports the span itself,
    readable then as a ReadableSpan (name, context, parent, times, attributes, events, resource)."""

    links: tuple[Any, ...] = ()
    dropped_attributes = dropped_events = dropped_links = 0

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        start: int | None = None,
    ) -> None:
        self._tracer, self.name, self.context, self.parent, self.kind = tracer, name, context, parent, kind
        self.attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.status = UNSET
        self.start_time = start or time.time_ns()
        self.end_time: int | None = None
        self.resource, self.instrumentation_scope = tracer.resource, tracer.scope

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.attributes.update(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self.events.append(Event(name, attributes, timestamp or time.time_ns()))

    def update_name(self, name: str) -> None:
        self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        self.add_event("exception", {"exception.type": type(exception).__name__}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is None:
            self.end_time = end_time or time.time_ns()
            self._tracer.processor.on_end(self)

    def readable(self) -> ReadableSpan:
        """The SDK's record of this span, for exporters that want one (OTLP's)."""
        return ReadableSpan(
            self.name,
            self.context,
            self.parent,
            self.resource,
            self.attributes,
            self.events,
            kind=self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self.instrumentation_scope,
        )


class LeanTracer:
    """Starts LeanSpans under `provider`'s sampler, ids and resource, exported through `processor`."""

    def __init__(self, provider: Any, processor: Any, scope: InstrumentationScope = SCOPE) -> None:
        self.sampler, self.ids, self.resource = provider.sampler, provider.id_generator, provider.resource
        self.processor, self.scope = processor, scope
        self.follows_parent = follows_parent(self.sampler)
        self.samples_roots = self.follows_parent and self.sampler._root is ALWAYS_ON  # trace_ratio 1.0

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Any] = (),
    ) -> trace.Span:
        """A span, the child of `context`'s current span (None: the current context's), recording when sampled."""
        parent = trace.get_current_span(context).get_span_context()
        parent_context = parent if parent.is_valid else None
        if parent_context and self.follows_parent:  # the sampler's own answers, without asking it
            trace_id, sampled, trace_state, kept = (
                parent.trace_id,
                parent.trace_flags.sampled,
                parent.trace_state,
                attributes,
            )
        elif not parent_context and self.samples_roots:
            trace_id, sampled, trace_state, kept = self.ids.generate_trace_id(), True, None, attributes
        else:
            trace_id = parent.trace_id if parent_context else self.ids.generate_trace_id()
            result = self.sampler.should_sample(context, trace_id, name, kind, attributes)
            sampled, trace_state, kept = result.decision.is_sampled(), result.trace_state, result.attributes
        span_context = SpanContext(
            trace_id, self.ids.generate_span_id(), False, SAMPLED if sampled else NOT_SAMPLED, trace_state
        )
        if not sampled:
            return NonRecordingSpan(span_context)
        span = LeanSpan(self, name, span_context, parent_context, kind)
        if kept:
            span.set_attributes(kept)
        return span

    @contextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Any] = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """`start_span`'s span, current within the block and ended at its end, as the SDK's tracer does it."""
        span = self.start_span(name, context, kind, attributes, links)
        with trace.use_span(span, end_on_exit, record_exception, set_status_on_exception) as current:
            yield current

    def finished(
        self,
        name: str,
        parent: SpanContext | None,
        start: int,
        end: int,
        attributes: dict[str, Any] | None = None,
        events: tuple[tuple[str, int], ...] = (),
    ) -> SpanContext | None:
        """An INTERNAL span already over (times in ns since the epoch), the child of `parent` (None: the current
        span), exported at once; its context, or None when the parent is not sampled (or there is none)."""
        if parent is None:
            parent = trace.get_current_span().get_span_context()
        if not parent.is_valid or not parent.trace_flags.sampled:
            return None
        context = SpanContext(parent.trace_id, self.ids.generate_span_id(), False, parent.trace_flags)
        span = LeanSpan(self, name, context, parent, INTERNAL, start)
        if attributes:
            span.attributes = attributes
        span.events.extend(Event(event, None, at) for event, at in events)
        span.end(end)
        return context


def follows_parent(sampler: Any) -> bool:
    """Whether `sampler` samples a span with a parent as its parent was (ParentBased with its default delegates, as
    every tier's is), keeping the parent's trace state and the span's attributes."""
    delegates = (
        "_remote_parent_sampled",
        "_local_parent_sampled",
        "_remote_parent_not_sampled",
        "_local_parent_not_sampled",
    )
    expected = (ALWAYS_ON, ALWAYS_ON, ALWAYS_OFF, ALWAYS_OFF)
    return type(sampler) is ParentBased and all(
        getattr(sampler, d, None) is e for d, e in zip(delegates, expected, strict=True)
    )


class LeanProvider(TracerProvider):
    """The SDK's provider whose tracers are lean (code that asks `trace.get_tracer` for one, such as the Lambda's
    span, gets a LeanTracer), exporting through the one `processor` it is given."""

    def __init__(self, processor: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_span_processor(processor)
        self.processor = processor
        self._lean: dict[str, LeanTracer] = {}

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any:
        """A LeanTracer of the module's scope, made once per name."""
        if instrumenting_module_name not in self._lean:
            scope = InstrumentationScope(instrumenting_module_name)
            self._lean[instrumenting_module_name] = LeanTracer(self, self.processor, scope)
        return self._lean[instrumenting_module_name]


class AsReadable(SpanExporter):
    """`exporter` (OTLP's), handed the SDK's ReadableSpans in place of LeanSpans."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        """Convert the lean spans, then export."""
        return self.exporter.export([s.readable() if isinstance(s, LeanSpan) else s for s in spans])

    def shutdown(self) -> None:
        """Shut the exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the exporter."""
        return self.exporter.force_flush(timeout_millis)

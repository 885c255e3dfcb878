"""The function's span: one SERVER span per invocation, the child of the trace its event's headers carry (W3C's
`traceparent`, or X-Ray's `X-Amzn-Trace-Id` as API Gateway sends it), when the process traces.

The function sets up no tracing of its own: in AWS the ADOT layer (or the same SDK, docs/tracing.md) installs
the tracer provider and instruments boto3 before the handler runs; in the local cloud, the local cloud does. When
nothing has imported OpenTelemetry, this module imports nothing either, and the span is no span."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REQUEST_ID = "lambdallm.request_id"
_tracer: tuple[Any, Any] | None = None  # the provider it came from, and the tracer


@contextmanager
def invocation_span(event: Any, context: Any, request_id: str) -> Iterator[None]:
    """The invocation's span around the block, named for the function, with its request ids as attributes."""
    if "opentelemetry.trace" not in sys.modules:
        yield
        return
    from opentelemetry import propagate, trace

    headers = event.get("headers") if isinstance(event, dict) else None
    carrier = {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
    name = str(getattr(context, "function_name", "") or "llm_lambda")
    attributes = {
        "faas.trigger": "http",
        "faas.name": name,
        "faas.invocation_id": str(getattr(context, "aws_request_id", "")),
        "cloud.provider": "aws",
        REQUEST_ID: request_id,
    }
    global _tracer
    if _tracer is None or _tracer[0] is not trace.get_tracer_provider():  # one tracer per provider, not per call
        _tracer = (trace.get_tracer_provider(), trace.get_tracer("llm_lambda"))
    tracer = _tracer[1]
    kind = trace.SpanKind.SERVER
    with tracer.start_as_current_span(name, propagate.extract(carrier), kind, attributes=attributes):
        yield

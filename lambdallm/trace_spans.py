"""The tiers' spans, made by hand at the few points that matter with the tiers' lean tracer
(lambdallm/trace_lean.py): a server span per HTTP request and per gRPC call, the trace sent on in the backend
request's and boto3's headers (their callee's server span is the caller's span's child), each hop's trace headers
read and written by hand in the common case and by the propagators (W3C's and X-Ray's) otherwise.

OpenTelemetry's instrumentations for ASGI, grpc, aiohttp and botocore did this first at three times the cost
(each read and wrote a score of attributes, and botocore's read every Bedrock request and answer): at sampling
ratio 1.0 the instant chain lost a third of its requests/s. Imported only while tracing (it needs the SDK)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators import textmap
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from lambdallm.metrics import StatusSeen
from lambdallm.proxy.wrapping import wrapped

SERVER = SpanKind.SERVER
ERROR = Status(StatusCode.ERROR)
TRACE_HEADERS = (b"traceparent", b"tracestate", b"x-amzn-trace-id")  # W3C's and X-Ray's: all the propagator reads
ROOT = otel_context.Context()  # a request that brings no trace starts one: no parent, whatever is current
NAMES_KEPT = 256
SpanNamer = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


# traceparent last: when both headers come, W3C's wins; X-Ray's alone (API Gateway, Lambda) is honoured too.
PROPAGATOR = CompositePropagator([AwsXRayPropagator(), TraceContextTextMapPropagator()])
ONLY_TRACEPARENT = frozenset(("traceparent", "x-amzn-trace-id"))  # what extracted reads itself
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")  # W3C's version 00, the common case


def extracted(carrier: dict[str, str]) -> otel_context.Context:
    """The context of the caller's trace in `carrier` (trace headers only), or a root's when none came: a
    version-00 `traceparent` without `tracestate` read here (beside X-Ray's header too: the propagators let W3C's
    win), anything else by the propagators, which read it the same way (tests/test_tracing.py) at five times the
    cost."""
    if not carrier:
        return ROOT
    if carrier.keys() <= ONLY_TRACEPARENT and (remote := _remote(carrier.get("traceparent"))):
        return trace.set_span_in_context(NonRecordingSpan(remote), ROOT)
    if "x-amzn-trace-id" in carrier:  # the X-Ray propagator looks its header up by its own spelling only
        carrier = carrier | {"X-Amzn-Trace-Id": carrier["x-amzn-trace-id"]}
    return PROPAGATOR.extract(carrier, ROOT)


def _remote(traceparent: object) -> SpanContext | None:
    """The caller's span context in a version-00 `traceparent`, None if it is not one (or its ids are zeros)."""
    if type(traceparent) is str and (match := TRACEPARENT.fullmatch(traceparent)):
        trace_id, span_id, flags = int(match[1], 16), int(match[2], 16), int(match[3], 16)
        if trace_id and span_id:
            return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return None


class LeanPropagator(textmap.TextMapPropagator):
    """PROPAGATOR, with `extracted`'s and `inject`'s shortcuts where they give what it gives (a dict carrier with a
    version-00 `traceparent` and no `tracestate`; the current context, a dict carrier): the global one, for code
    that propagates through the API (the Lambda's span)."""

    def extract(
        self, carrier: Any, context: otel_context.Context | None = None, getter: Any = textmap.default_getter
    ) -> otel_context.Context:
        """The context in `carrier`'s trace headers, on `context` (None: the current one)."""
        plain = getter is textmap.default_getter and type(carrier) is dict and "tracestate" not in carrier
        if plain and (remote := _remote(carrier.get("traceparent"))):  # W3C's wins over X-Ray's in PROPAGATOR too
            base = otel_context.get_current() if context is None else context
            return trace.set_span_in_context(NonRecordingSpan(remote), base)
        return PROPAGATOR.extract(carrier, context, getter)

    def inject(
        self, carrier: Any, context: otel_context.Context | None = None, setter: Any = textmap.default_setter
    ) -> None:
        """Write the trace of `context` (None: the current one) into `carrier`."""
        if context is None and setter is textmap.default_setter and type(carrier) is dict:
            inject(carrier)
        else:
            PROPAGATOR.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        """The headers it reads and writes."""
        return PROPAGATOR.fields


def inject(carrier: Any, xray: bool = True) -> None:
    """Write the current span's trace into `carrier`: `traceparent` (and `tracestate`), and X-Ray's
    `X-Amzn-Trace-Id` unless `xray` is False, as the propagators write them (tests/test_tracing.py) at a fifth
    of the cost."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return
    trace_id, span_id, flags = f"{context.trace_id:032x}", f"{context.span_id:016x}", context.trace_flags
    if xray:
        sampled = "1" if flags & TraceFlags.SAMPLED else "0"
        carrier["X-Amzn-Trace-Id"] = f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_id};Sampled={sampled}"
    carrier["traceparent"] = f"00-{trace_id}-{span_id}-{flags:02x}"
    if context.trace_state:
        carrier["tracestate"] = context.trace_state.to_header()


class TracedAsgi:
    """A SERVER span around each HTTP request of `app` but `untraced` paths, the caller's span its parent and the
    current span while the app runs; it ends when the app returns (a stream's last byte)."""

    def __init__(self, app: Any, tracer: Any, untraced: Iterable[str], name_of: SpanNamer) -> None:
        self.app, self.tracer, self.untraced, self.name_of = app, tracer, frozenset(untraced), name_of
        self.names: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}  # (method, path) -> name, attributes

    def _named(self, scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        key = (scope["method"], scope["path"])
        if key not in self.names:
            name, _ = self.name_of(scope)
            method, route = name.split(" ", 1)
            if len(self.names) >= NAMES_KEPT:  # paths are the client's to choose: keep a bounded few
                self.names.clear()
            self.names[key] = name, {"http.request.method": method, "http.route": route}
        return self.names[key]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in self.untraced:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in TRACE_HEADERS}
        name, attributes = self._named(scope)
        span = self.tracer.start_span(name, extracted(carrier), SERVER, attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        seen = StatusSeen(send)
        try:
            await self.app(scope, receive, seen)
        except BaseException:
            span.set_status(ERROR)
            raise
        finally:
            if status := seen.status:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(ERROR)
            otel_context.detach(token)
            span.end()


class TracedCalls(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A SERVER span per unary and server-streaming call but `untraced` services' (health checks), named for the
    full method, the caller's span (from the call's metadata) its parent, the current span while the call runs."""

    def __init__(self, tracer: Any, untraced: tuple[str, ...]) -> None:
        self.tracer, self.untraced = tracer, tuple(f"/{service}/" for service in untraced)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = str(details.method)
        if handler is None or method.startswith(self.untraced):
            return handler
        carrier = {k: v for k, v in details.invocation_metadata or () if k in ("traceparent", "tracestate")}
        service, _, name = method[1:].rpartition("/")
        attributes, parent = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}, extracted(carrier)

        async def enter(_: grpc.aio.ServicerContext) -> tuple[Any, Any]:
            span = self.tracer.start_span(method, parent, SERVER, attributes)
            return span, otel_context.attach(trace.set_span_in_context(span))

        def leave(begun: tuple[Any, Any], status: grpc.StatusCode) -> None:
            span, token = begun
            code = status.value[0]
            span.set_attribute("rpc.grpc.status_code", code)
            if code:
                span.set_status(ERROR)
            span.end()
            otel_context.detach(token)

        return wrapped(handler, enter, leave)  # reflection's bidirectional stream is not traced


def instrument_botocore() -> None:
    """Every botocore client's requests carry the current span's trace (the Lambda function's) in their headers,
    W3C's and X-Ray's, written before the request is signed; the called service's server span is its child."""
    from botocore.endpoint import Endpoint

    prepare_request = Endpoint.prepare_request

    def traced_request(endpoint: Any, request: Any) -> Any:
        inject(request.headers)
        return prepare_request(endpoint, request)

    Endpoint.prepare_request = traced_request

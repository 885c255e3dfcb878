"""OpenTelemetry tracing of every server tier, off unless the tier's `trace_exporter` says otherwise.

While it is off nothing of OpenTelemetry is imported and every hook here returns at once, so a tier installed
without the `tracing` extra runs as before and pays nothing. Span names and attributes: docs/tracing.md."""

from __future__ import annotations

from typing import Any

from lambdallm.settings import SettingsError, TraceSettings

REQUEST_ID = "lambdallm.request_id"  # the span attribute every tier sets: the request id of the logs
UNTRACED_PATHS = ("/metrics", "/health", "/ready", "/ping")  # scrapes and probes: a trace each would be noise
_on = False
_settings = TraceSettings()
_providers: dict[str, Any] = {}  # by service, those made by provider_for
_hooks: dict[str, Any] = {}  # the propagators' inject and the current span's getter, once configured
_processor: list[Any] = []  # the process's one exporting span processor, shared by its providers
_process_service = [""]  # the service of the process's own provider, the global one


def configure(settings: TraceSettings, service: str) -> bool:
    """Install the process's tracer provider (service.name `service`), its exporter and sampler, and W3C trace
    context with X-Ray's header as the propagators; False, importing nothing, when `trace_exporter` is "none".
    A SettingsError names the key that is wrong, or the extra that is missing."""
    global _on, _settings
    if settings.trace_exporter == "none":
        return False
    try:
        from opentelemetry import propagate, trace
        from opentelemetry.propagators.aws import AwsXRayPropagator  # noqa: F401  # the extra's, checked here
    except ModuleNotFoundError as exc:
        detail = f"trace_exporter: {settings.trace_exporter!r} needs OpenTelemetry ({exc.name} is missing)"
        raise SettingsError(f"{detail}; install it with pip install 'lambdallm[tracing]'") from exc
    _settings = settings
    trace.set_tracer_provider(provider_for(service))
    _process_service[:] = [service]
    from lambdallm.trace_spans import PROPAGATOR, LeanPropagator, inject

    propagate.set_global_textmap(LeanPropagator())  # for the Lambda's span (lambda/llm_lambda/tracing.py)
    # What each request calls, looked up once here rather than imported per call.
    _hooks.update(fields=frozenset(name.lower() for name in PROPAGATOR.fields), inject=inject)
    _hooks["current_span"] = trace.get_current_span
    _on = True
    return True


def provider_for(service: str) -> Any:
    """A tracer provider of its own for `service` (a tier that shares its process with others: the local cloud's
    API Gateway and Bedrock beside the Lambda), its tracers lean (lambdallm/trace_lean.py); one per service, all
    of a process exporting through one span processor (one thread, one file or connection)."""
    if service in _providers:
        return _providers[service]
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    from lambdallm.trace_lean import LeanProvider

    if not _processor:
        _processor.append(BatchSpanProcessor(_exporter(_settings)))
    ratio = _settings.trace_ratio
    provider = LeanProvider(
        _processor[0],
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio)),
    )
    return _providers.setdefault(service, provider)


def tracer(service: str) -> Any:
    """The tracer of `service`'s own provider, if one was made, else the process's: lean spans
    (lambdallm/trace_lean.py)."""
    return _providers.get(service, _providers[_process_service[0]]).get_tracer("lambdallm")


def finished_span(
    service: str,
    name: str,
    parent: Any,
    start: int,
    end: int,
    attributes: dict[str, Any] | None = None,
    events: tuple[tuple[str, int], ...] = (),
) -> Any:
    """An INTERNAL span of `service` that has already ended (times in ns since the epoch), the child of `parent`
    (a span context; None: the current span's), handed to the exporter as it is; its context, or None when the
    parent is not sampled (or there is none)."""
    return tracer(service).finished(name, parent, start, end, attributes, events)


def _exporter(settings: TraceSettings) -> Any:
    if settings.trace_exporter == "file":
        if not settings.trace_file:
            raise SettingsError('trace_file: not set, and trace_exporter is "file": name the JSON-lines file')
        from lambdallm.trace_file import JsonLinesExporter

        return JsonLinesExporter(settings.trace_file)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from lambdallm.trace_lean import AsReadable

    endpoint = settings.trace_endpoint or None  # the SDK's default (or OTEL_EXPORTER_OTLP_*): localhost:4318
    return AsReadable(OTLPSpanExporter(endpoint=endpoint, headers=otlp_headers(settings.trace_headers)))


def otlp_headers(text: str) -> dict[str, str]:
    """`k=v,k2=v2` as a dict; anything else is a SettingsError naming trace_headers."""
    headers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise SettingsError(f"trace_headers: {item.split('=')[0][:40]!r} is not name=value")
        headers[name.strip()] = value.strip()
    return headers


def enabled() -> bool:
    """Whether this process traces."""
    return _on


def traced_asgi(app: Any, service: str = "") -> Any:
    """`app` with a server span per request (lambdallm/trace_spans.py; `service`: under a provider of its own, see
    `provider_for`) when tracing, else `app`."""
    if not _on:
        return app
    from lambdallm.trace_spans import TracedAsgi

    if service:
        provider_for(service)
    return TracedAsgi(app, tracer(service), UNTRACED_PATHS, span_details)


def span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A server span's name, `METHOD /path`, the ids in a path replaced by their names (a span name is a
    low-cardinality template)."""
    path = str(scope.get("path", ""))
    parts = path.split("/")
    if path.startswith("/model/") and len(parts) >= 4:
        path = "/model/{modelId}/" + parts[-1]
    elif path.startswith("/v1/models/"):
        path = "/v1/models/{model}"
    return f"{scope.get('method', 'HTTP')} {path}", {}


def grpc_server_interceptors() -> list[Any]:
    """A server span per call but health checks' (probes: noise) when tracing, else no interceptor."""
    if not _on:
        return []
    from lambdallm.trace_spans import TracedCalls

    return [TracedCalls(tracer(""), ("grpc.health.v1.Health",))]


def instrument_botocore() -> None:
    """The trace in every AWS call's headers, W3C's and X-Ray's both (lambdallm/trace_spans.py)."""
    if _on:
        from lambdallm.trace_spans import instrument_botocore as instrument

        instrument()


def context_metadata() -> tuple[tuple[str, str], ...]:
    """The current trace context as gRPC metadata (traceparent ...), or nothing when not tracing.

    The REST tier adds it to each call's metadata itself: grpc.aio's client interceptors run a call in a task of
    its own, which a client's hang-up would cancel mid-read (lambdallm/rest/calls.py)."""
    if not _on:
        return ()
    carrier: dict[str, str] = {}
    _hooks["inject"](carrier, xray=False)  # W3C's alone: X-Ray's header is for AWS's hops
    return tuple(carrier.items())


def inject_headers(headers: dict[str, str]) -> None:
    """Put the current trace context in `headers` (a backend request's, or a Lambda event's: API Gateway hands the
    function its own span as the parent, as X-Ray's header does in AWS), replacing any trace headers they had."""
    if not _on:
        return
    fields = _hooks["fields"]
    for name in [name for name in headers if name.lower() in fields]:
        del headers[name]
    _hooks["inject"](headers)


def tag_request(request_id: str) -> None:
    """Set the request id on the current span (never the prompt or the answer)."""
    if _on:
        _hooks["current_span"]().set_attribute(REQUEST_ID, request_id)

"""Tracing's settings and its off switch: off, no tier imports OpenTelemetry; on, a bad setting names its key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambdallm import tracing
from lambdallm.settings import ProxySettings, RestSettings, SettingsError, load

# Every tier built as it serves, tracing off (the default): then nothing of OpenTelemetry is in the process.
TIERS_OFF = """
import json, sys
from lambdallm import tracing
from lambdallm.local_cloud import server as cloud
from lambdallm.local_cloud.engines import create_engine
from lambdallm.proxy import server as proxy
from lambdallm.proxy.backend import Backend
from lambdallm.rest import app as rest
from lambdallm.settings import CloudSettings, ProxySettings, RestSettings
from llm_lambda.handler import Function

assert not tracing.configure(RestSettings(), "lambdallm-rest")
rest.uvicorn_server(RestSettings(auth="none", grpc_auth="none"))
proxy.create_server(ProxySettings(port=0, auth="none"), Backend(ProxySettings()))
Function(cloud.function_config(CloudSettings(), "http://127.0.0.1:1")).lambda_handler({}, None)
tracing.traced_asgi(object(), "lambdallm-bedrock"), tracing.context_metadata(), tracing.tag_request("r")
print(json.dumps(sorted(name for name in sys.modules if name.startswith("opentelemetry"))))
"""


def test_tracing_off_imports_nothing_of_opentelemetry_in_any_tier() -> None:
    result = subprocess.run([sys.executable, "-c", TIERS_OFF], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"LAMBDALLM_REST_TRACE_EXPORTER": "jaeger"}, "LAMBDALLM_REST_TRACE_EXPORTER"),
        ({"LAMBDALLM_REST_TRACE_RATIO": "1.5"}, "LAMBDALLM_REST_TRACE_RATIO"),
        ({"LAMBDALLM_REST_TRACE_RATIO": "nan"}, "LAMBDALLM_REST_TRACE_RATIO"),
    ],
)
def test_a_bad_trace_setting_names_its_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        load(RestSettings, "rest", environ=environ)


def test_a_file_exporter_needs_its_file() -> None:
    with pytest.raises(SettingsError, match="trace_file"):
        tracing.configure(ProxySettings(trace_exporter="file"), "lambdallm-proxy")


@pytest.mark.parametrize("text", ["authorization", "=x", "a=b,c"])
def test_otlp_headers_that_are_not_name_value_pairs_name_the_key(text: str) -> None:
    with pytest.raises(SettingsError, match="trace_headers"):
        tracing.otlp_headers(text)


def test_otlp_headers_are_name_value_pairs() -> None:
    assert tracing.otlp_headers(" authorization=Bearer t , x-tenant=a=b,") == {
        "authorization": "Bearer t",
        "x-tenant": "a=b",
    }


def test_the_file_exporter_appends_one_json_line_per_span(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from lambdallm.trace_file import JsonLinesExporter

    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(str(path))))
    for name in ("one", "two"):
        provider.get_tracer("test").start_span(name).end()
    provider.shutdown()
    assert [json.loads(line)["name"] for line in path.read_text().splitlines()] == ["one", "two"]


OTLP_TIER = """
import sys
from opentelemetry import trace
from lambdallm import tracing
from lambdallm.settings import ProxySettings

settings = ProxySettings(trace_exporter="otlp", trace_endpoint=sys.argv[1], trace_headers="authorization=Bearer t0k")
assert tracing.configure(settings, "lambdallm-proxy")
tracing.tracer("lambdallm-proxy").start_span("the-span", attributes={tracing.REQUEST_ID: "r-1"}).end()
trace.get_tracer_provider().shutdown()  # flushes the batch
"""


def test_the_otlp_exporter_sends_the_tier_s_spans_with_its_headers() -> None:
    """A test-side OTLP/HTTP receiver: what a collector would get from a tier configured for it."""
    import http.server
    import threading

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, str | None, bytes]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers.get("authorization"), body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
        result = subprocess.run([sys.executable, "-c", OTLP_TIER, url], capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    ((path, authorization, body),) = received
    assert (path, authorization) == ("/v1/traces", "Bearer t0k")
    request = ExportTraceServiceRequest.FromString(body)
    (resource,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    spans = [span for scope in resource.scope_spans for span in scope.spans]
    assert service == "lambdallm-proxy" and [span.name for span in spans] == ["the-span"]
    assert {a.key: a.value.string_value for a in spans[0].attributes} == {"lambdallm.request_id": "r-1"}


@pytest.mark.parametrize("flags", ["01", "00"])
def test_the_hand_written_propagation_reads_and_writes_what_the_propagators_do(flags: str) -> None:
    """lambdallm/trace_spans.py's own `traceparent` reader and trace-header writer, the hot path of every hop:
    the same contexts and headers as W3C's and X-Ray's propagators."""
    from opentelemetry import trace
    from opentelemetry.propagators.aws import AwsXRayPropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from lambdallm import trace_spans

    propagator = CompositePropagator([AwsXRayPropagator(), TraceContextTextMapPropagator()])
    carrier = {"traceparent": f"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-{flags}"}
    ours = trace_spans.extracted(carrier)
    theirs = propagator.extract(carrier, trace_spans.ROOT)
    assert trace.get_current_span(ours).get_span_context() == trace.get_current_span(theirs).get_span_context()
    xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    for sent in (carrier | {"x-amzn-trace-id": xray}, {"x-amzn-trace-id": xray}):  # as an ASGI server has them
        canonical = {"X-Amzn-Trace-Id" if k == "x-amzn-trace-id" else k: v for k, v in sent.items()}
        read = trace.get_current_span(trace_spans.extracted(sent)).get_span_context()
        assert read == trace.get_current_span(propagator.extract(canonical, trace_spans.ROOT)).get_span_context()
        assert read.is_valid and (read.trace_id == 0x0AF7651916CD43DD8448EB211C80319C) == ("traceparent" in sent)
    for bad in ("00-" + "0" * 32 + "-b7ad6b7169203331-01", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"):
        assert not trace.get_current_span(trace_spans.extracted({"traceparent": bad})).get_span_context().is_valid
    written: dict[str, str] = {}
    expected: dict[str, str] = {}
    token = trace_spans.otel_context.attach(ours)
    try:
        trace_spans.inject(written)
        propagator.inject(expected)
        w3c_only: dict[str, str] = {}
        trace_spans.inject(w3c_only, xray=False)
    finally:
        trace_spans.otel_context.detach(token)
    assert written == expected and set(expected) == {"X-Amzn-Trace-Id", "traceparent"}
    assert w3c_only == {"traceparent": carrier["traceparent"]}


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "content-type": "application/json"},
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "tracestate": "k=v"},
        {"x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
        {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"},
        {"traceparent": "00-" + "0" * 32 + "-b7ad6b7169203331-01"},
        {},
    ],
)
def test_the_global_propagator_reads_and_writes_what_the_propagators_do(carrier: dict[str, str]) -> None:
    """The global propagator (the Lambda's span reads its event's headers through it): its shortcut for a plain
    `traceparent` gives the propagators' context, on the current context, and writes their headers."""
    from opentelemetry import trace

    from lambdallm import trace_spans

    ours, theirs = trace_spans.LeanPropagator(), trace_spans.PROPAGATOR
    read = ours.extract(carrier)
    assert (
        trace.get_current_span(read).get_span_context()
        == trace.get_current_span(theirs.extract(carrier)).get_span_context()
    )
    token = trace_spans.otel_context.attach(read)
    try:
        written: dict[str, str] = {}
        expected: dict[str, str] = {}
        ours.inject(written)
        theirs.inject(expected)
    finally:
        trace_spans.otel_context.detach(token)
    assert written == expected and ours.fields == theirs.fields

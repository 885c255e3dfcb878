"""The proxy's grpc.aio server: create it, serve it until SIGTERM/SIGINT, stop it gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import grpc
import uvloop
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_pb2_grpc
from lambdallm import logs, tier, tracing
from lambdallm.http_protocol import ConnectionLimits
from lambdallm.proxy.auth import RequireToken, proxy_tokens
from lambdallm.proxy.backend import Backend
from lambdallm.proxy.decoding import DecodeRequests
from lambdallm.proxy.edge import Edge
from lambdallm.proxy.metrics import ProxyMetrics, start_metrics_server
from lambdallm.proxy.reflection import enable_reflection
from lambdallm.proxy.service import SERVICE_NAME, BackendHealth, LlmService
from lambdallm.settings import ProxySettings, SettingsError

log = logging.getLogger("lambdallm.proxy")


def create_server(
    settings: ProxySettings, backend: Backend, health: BackendHealth | None = None, metrics: ProxyMetrics | None = None
) -> tuple[grpc.aio.Server, int]:
    """A server bound to settings.host:port (0 picks a free port) with LlmService, health and reflection,
    behind the token check and the edge that limits and measures the calls; a SettingsError for a bad token
    setting."""
    metrics = metrics or ProxyMetrics(settings.max_in_flight)
    # grpc sets SO_REUSEPORT by default: a second proxy would share the port and the kernel would split
    # connections between them. Off, a taken port fails to bind like any other server's.
    # The caller's token first (a call without it reaches nothing), then the in-flight limit (it refuses before
    # anything is decoded), then undecodable requests.
    interceptors = [
        *tracing.grpc_server_interceptors(),
        RequireToken(proxy_tokens(settings), SERVICE_NAME, metrics.unauthenticated),
        Edge(metrics, settings.max_in_flight, SERVICE_NAME),
        DecodeRequests(),
    ]
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0), *connection_age(settings)])
    service = LlmService(backend, metrics.tokens)
    llm_pb2_grpc.add_LlmServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    health = health or BackendHealth(backend, settings.ready_interval_s, settings.max_health_watches)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    enable_reflection((SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server)
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:  # grpc's only word for it: "Failed to bind to address"
        raise tier.CannotListen(f"cannot listen on {address}: address in use or not available") from exc
    return server, port


def connection_age(settings: ProxySettings) -> list[tuple[str, int]]:
    """gRPC's options for `max_connection_age_s`: a connection gets its GOAWAY then (gRPC adds up to 10 % either
    way, so that connections made together do not all move at once), and the calls under way on it have a whole
    stream's time (`stream_timeout_s`, plus a margin) to end before it is closed."""
    grace_s = settings.stream_timeout_s + 15
    return [
        ("grpc.max_connection_age_ms", int(settings.max_connection_age_s * 1000)),
        ("grpc.max_connection_age_grace_ms", int(grace_s * 1000)),
    ]


def server_credentials(settings: ProxySettings) -> grpc.ServerCredentials | None:
    """TLS credentials from tls_cert_file and tls_key_file (both or neither), or None for plaintext; a
    SettingsError names a missing half or a file that cannot be read."""
    files = {"tls_cert_file": settings.tls_cert_file, "tls_key_file": settings.tls_key_file}
    if not any(files.values()):
        return None
    for key, path in files.items():
        if not path:
            raise SettingsError(f"{key} is not set: TLS needs both tls_cert_file and tls_key_file")
    pem: dict[str, bytes] = {}
    for key, path in files.items():
        try:
            pem[key] = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise SettingsError(f"{key}: cannot read {path}: {exc.strerror}") from exc
    return grpc.ssl_server_credentials([(pem["tls_key_file"], pem["tls_cert_file"])])


async def run(settings: ProxySettings, stop: asyncio.Event) -> None:
    """Serve until `stop` is set, then let in-flight calls finish for settings.grace_s seconds."""
    async with Backend(settings) as backend:
        health = BackendHealth(backend, settings.ready_interval_s, settings.max_health_watches)
        metrics = ProxyMetrics(settings.max_in_flight)
        server, port = create_server(settings, backend, health, metrics)
        limits = ConnectionLimits(
            settings.metrics_header_timeout_s,
            settings.metrics_body_timeout_s,
            settings.metrics_write_timeout_s,
            settings.metrics_max_connections,
        )
        scraper, metrics_port = await start_metrics_server(
            metrics.registry, settings.host, settings.metrics_port, limits, settings.metrics_keep_alive_s
        )
        try:
            await server.start()
            tls = bool(settings.tls_cert_file)
            log.info(
                "proxy listening",
                extra={
                    "port": port,
                    "metrics_port": metrics_port,
                    "backend_url": settings.backend_url,
                    "tls": tls,
                    "auth": settings.auth,
                },
            )
            tier.announce({"grpc": port, "proxy_metrics": metrics_port})
            await stop.wait()
            log.info("proxy stopping", extra={"grace_s": settings.grace_s})
            await health.enter_graceful_shutdown()
            await server.stop(settings.grace_s)
        finally:
            await scraper.cleanup()
    log.info("proxy stopped")


def serve(settings: ProxySettings) -> int:
    """Entry point of `lambdallm proxy`: JSON logs, serve until SIGTERM or SIGINT, exit 0."""
    logs.configure("proxy")
    tracing.configure(settings, "lambdallm-proxy")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop)

    tier.settle()
    uvloop.run(main())  # libuv's event loop: less CPU per request than asyncio's own
    return 0

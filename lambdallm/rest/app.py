"""The REST tier's Connexion app: spec-routed handlers, one gRPC channel per process, problem+json errors."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import connexion
import grpc
import uvicorn
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from grpc_health.v1 import health_pb2_grpc
from starlette.exceptions import HTTPException
from starlette.routing import Mount, Router

from generated.llm.v1 import llm_pb2_grpc
from lambdallm import logs, tier, tracing
from lambdallm.bearer import authorization_metadata, read_tokens
from lambdallm.http_protocol import ProblemHttpProtocol, connection_limits
from lambdallm.metrics import Measured
from lambdallm.rest import auth, flat, problems
from lambdallm.rest.balancing import SERVICE_CONFIG
from lambdallm.rest.body_limit import body_limit
from lambdallm.rest.edge import Admission, Edge, keyed_operations
from lambdallm.rest.limit_store import LimitStore, store_for
from lambdallm.rest.limits import KeyLimits
from lambdallm.rest.llm import ProxyClient
from lambdallm.rest.metrics import RestMetrics, RouteLabels
from lambdallm.rest.middleware import RequestContext
from lambdallm.rest.openai_errors import PREFIX as OPENAI_PREFIX
from lambdallm.rest.openai_errors import OpenAIErrors
from lambdallm.rest.operations import OnceApi
from lambdallm.rest.playground import Playground
from lambdallm.rest.usage import UsageMetrics
from lambdallm.rest.validators import VALIDATOR_MAP
from lambdallm.settings import RestSettings, SettingsError
from lambdallm.shipped import shipped

SPEC = shipped("specs") / "openapi.yaml"
OPENAI_SPEC = shipped("specs") / "openai.yaml"  # served under /v1, its errors in OpenAI's shape
# The young generation's threshold (Python's is 700). A request here leaves no cycles (tests/rest/test_garbage.py),
# and 64 in flight made 80 young collections per 1,000 requests, 0.05-0.17 ms of CPU a request; at 7,000, 0.002.
# Not in the proxy, whose grpc.aio server leaves a cycle per call; the local cloud has its own.
YOUNG_GC_THRESHOLD = 7000
# gRPC's reconnect backoff grows to 120 s: after a proxy outage of a few seconds the channel would still wait
# seconds after the proxy is back. Capped at 1 s, requests succeed again within a second of its restart.
CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
# Round robin over the proxies that grpc_target names, and one retry of a call a lost proxy failed (balancing.py).
CHANNEL_OPTIONS.append(("grpc.service_config", SERVICE_CONFIG))


class SnakeCaseResolver(Resolver):  # type: ignore[misc]
    """Routes camelCase operationIds (generateText) to snake_case functions (generate_text)."""

    def resolve_function_from_operation_id(self, operation_id: str) -> Any:
        module, _, name = operation_id.rpartition(".")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        return super().resolve_function_from_operation_id(f"{module}.{snake}" if module else snake)


def channel_credentials(settings: RestSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials for the channel to the proxy (the CA file's certificates, else the system's), or None
    for plaintext; a CA file turns TLS on. A SettingsError if the CA file cannot be read."""
    if not (settings.grpc_tls or settings.grpc_ca_file):
        return None
    roots = None
    if settings.grpc_ca_file:
        try:
            roots = Path(settings.grpc_ca_file).expanduser().read_bytes()
        except OSError as exc:
            raise SettingsError(f"grpc_ca_file: cannot read {settings.grpc_ca_file}: {exc.strerror}") from exc
    return grpc.ssl_channel_credentials(root_certificates=roots)


def proxy_token(settings: RestSettings) -> str | None:
    """The token this tier presents to the proxy (`grpc_token`, else the one line of `grpc_token_file`); None with
    grpc_auth "none". A SettingsError names the key when it is missing, unreadable or not one bearer token."""
    if settings.grpc_auth == "none":
        return None
    # grpc_token (LAMBDALLM_REST_GRPC_TOKEN) wins over the file, so a supervisor can hand over a token of its own.
    text, file = (settings.grpc_token, "") if settings.grpc_token else ("", settings.grpc_token_file)
    tokens = read_tokens(text, file, "grpc_token")
    if not tokens:
        raise SettingsError(
            'grpc_auth is "token" but grpc_token is not set: put the proxy\'s token in grpc_token_file (or '
            'LAMBDALLM_REST_GRPC_TOKEN), or grpc_auth = "none" for a proxy that asks for none'
        )
    if len(tokens) > 1:
        raise SettingsError(f"grpc_token: {len(tokens)} tokens are set; this tier presents one")
    return tokens[0]


def lifespan_for(settings: RestSettings, metrics: RestMetrics, key_store: LimitStore) -> Any:
    """A lifespan that opens the one gRPC channel of the process, presenting the proxy's token on every call, and
    exposes stubs as request state; it closes the keys' limit store at shutdown."""
    credentials = channel_credentials(settings)
    metadata = authorization_metadata(proxy_token(settings))

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        without_slash_redirects(app)  # Connexion has built its middleware stack by now
        if credentials is None:
            channel = grpc.aio.insecure_channel(settings.grpc_target, CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(settings.grpc_target, credentials, CHANNEL_OPTIONS)
        async with channel:
            yield {
                "settings": settings,
                "metrics": metrics,
                "llm": ProxyClient(llm_pb2_grpc.LlmServiceStub(channel), metadata),  # type: ignore[no-untyped-call]
                "health": health_pb2_grpc.HealthStub(channel),
            }
        await key_store.aclose()

    return lifespan


def without_slash_redirects(app: Any) -> None:
    """Turn off the trailing-slash redirects of every Starlette router in Connexion's middleware stack: their
    Location is built from the Host header, which any client chooses. `/query/` is then a 404, as is any path
    the spec does not serve."""
    pending = list(getattr(app, "middleware_stack", None) or ())
    while pending:
        layer = pending.pop()
        router = layer if isinstance(layer, Router) else getattr(layer, "router", None)
        if isinstance(router, Router):
            router.redirect_slashes = False
            pending += [route.app for route in router.routes if isinstance(route, Mount)]


def create_app(settings: RestSettings, *, admission: bool = True) -> connexion.AsyncApp:
    """The ASGI app serving specs/openapi.yaml with request and response validation, the spec's API key security
    (a SettingsError if auth is on and no key is set, or if max_body_bytes would refuse a valid request), Swagger
    UI at /ui, and Prometheus metrics at /metrics in front of the spec (docs/metrics.md); a SettingsError for a
    bad key, CA or proxy token setting. `admission=False` leaves out the in-flight limit (the bench's baseline)."""
    metrics = RestMetrics(settings.max_in_flight)
    keys = auth.key_ring(settings)  # the API keys' setting is named first, then the proxy's token
    security_map = auth.security_map(keys)
    key_usage = UsageMetrics(metrics.registry)
    key_store = store_for(settings, key_usage)  # each key's limits: in this process, or in Redis
    app = connexion.AsyncApp(__name__, lifespan=lifespan_for(settings, metrics, key_store))
    app._middleware_app.api_cls = OnceApi  # each operation's handler decorated once, not per request
    # Connexion routes the most specific base path first only when it is given here (the spec's is not looked at).
    for spec, base_path in ((OPENAI_SPEC, OPENAI_PREFIX), (SPEC, None)):
        app.add_api(
            spec,
            base_path=base_path,
            resolver=SnakeCaseResolver(),
            security_map=security_map,
            strict_validation=True,
            validate_responses=True,
            validator_map=VALIDATOR_MAP,
        )
    max_body_bytes = body_limit(settings, SPEC)
    app.add_middleware(OpenAIErrors, position=MiddlewarePosition.BEFORE_EXCEPTION)  # outermost: sees every answer
    app.add_middleware(RequestContext, position=MiddlewarePosition.BEFORE_EXCEPTION, max_body_bytes=max_body_bytes)
    # Each added inside the one before: a refusal carries the request id, is in the access log and is counted.
    before_exception = MiddlewarePosition.BEFORE_EXCEPTION
    app.add_middleware(
        Measured, position=before_exception, metrics=metrics.http, route_of=RouteLabels(SPEC, OPENAI_SPEC)
    )
    app.add_middleware(Edge, position=before_exception, metrics=metrics)
    app.add_middleware(Playground, position=before_exception)  # the page's static files, open to all (no key)
    # After routing and security: only authenticated generation work, with its body in, takes a slot; and each
    # key's limits. One chain of them, for the requests Connexion serves and for those of the flat path.
    limited = keyed_operations(SPEC) | keyed_operations(OPENAI_SPEC)
    junction = flat.Junction()
    limits: Any = KeyLimits(junction, store=key_store, metrics=key_usage, limited=limited)
    if admission:
        limits = Admission(limits, metrics, settings.max_in_flight, max_body_bytes, limited)
    served = flat.operations(SPEC, "", limited) | flat.operations(OPENAI_SPEC, OPENAI_PREFIX, limited)
    app.add_middleware(
        flat.FlatPath, position=before_exception, served=served, keys=keys, max_body_bytes=max_body_bytes, limits=limits
    )
    app.add_middleware(
        flat.SharedLimits, position=MiddlewarePosition.BEFORE_VALIDATION, limits=limits, junction=junction
    )
    app.add_error_handler(ProblemException, problems.on_problem)
    app.add_error_handler(HTTPException, problems.on_problem)
    app.add_error_handler(Exception, problems.on_unexpected)
    return app


class _Server(uvicorn.Server):
    """uvicorn, telling a supervisor where it listens once it does, and exiting 0 when SIGTERM stops it."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn raises the signal again once its graceful shutdown is done, so a tier stopped cleanly would
        # die of SIGTERM (status -15). A stop is not a crash: finish in-flight requests, then exit 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            tier.announce({"rest": self.servers[0].sockets[0].getsockname()[1]})


def uvicorn_server(
    settings: RestSettings, app: connexion.AsyncApp | None = None, *, http: type[asyncio.Protocol] | str | None = None
) -> uvicorn.Server:
    """A uvicorn server for the app on settings.host:port, logging through our JSON handlers; `http` replaces the
    bounded protocol (the bench's baseline passes uvicorn's stock "httptools")."""
    config = uvicorn.Config(
        tracing.traced_asgi(app or create_app(settings)),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        http=http or ProblemHttpProtocol.with_limits(connection_limits(settings)),
        timeout_keep_alive=settings.keep_alive_s,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return _Server(config)


def serve(settings: RestSettings) -> int:
    """Entry point of `lambdallm rest`: JSON logs, serve until SIGTERM or SIGINT."""
    logs.configure("rest")
    tracing.configure(settings, "lambdallm-rest")
    app = create_app(settings)  # a bad key or CA setting stops the tier before it listens
    sock = tier.bind_tcp(settings.host, settings.port)
    tier.listen(sock)
    server = uvicorn_server(settings, app)
    tier.settle(young_threshold=YOUNG_GC_THRESHOLD)
    server.run(sockets=[sock])
    return 0 if server.started else 1

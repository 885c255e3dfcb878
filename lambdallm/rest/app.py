"""The REST tier's Connexion app: spec-routed handlers, one gRPC channel per process, problem+json errors."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

from generated.llm.v1 import llm_pb2_grpc
from lambdallm import logs, tier
from lambdallm.rest import auth, problems
from lambdallm.rest.middleware import RequestContext
from lambdallm.rest.validators import VALIDATOR_MAP
from lambdallm.settings import RestSettings, SettingsError

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.yaml"


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


def lifespan_for(settings: RestSettings) -> Any:
    """A lifespan that opens the one gRPC channel of the process and exposes stubs as request state."""
    credentials = channel_credentials(settings)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        if credentials is None:
            channel = grpc.aio.insecure_channel(settings.grpc_target)
        else:
            channel = grpc.aio.secure_channel(settings.grpc_target, credentials)
        async with channel:
            yield {
                "settings": settings,
                "llm": llm_pb2_grpc.LlmServiceStub(channel),  # type: ignore[no-untyped-call]
                "health": health_pb2_grpc.HealthStub(channel),
            }

    return lifespan


def create_app(settings: RestSettings) -> connexion.AsyncApp:
    """The ASGI app serving specs/openapi.yaml with request and response validation, Swagger UI at /ui, and
    the spec's API key security; a SettingsError if auth is on and no key is set."""
    app = connexion.AsyncApp(__name__, lifespan=lifespan_for(settings))
    app.add_api(
        SPEC,
        resolver=SnakeCaseResolver(),
        security_map=auth.security_map(settings),
        strict_validation=True,
        validate_responses=True,
        validator_map=VALIDATOR_MAP,
    )
    app.add_middleware(
        RequestContext, position=MiddlewarePosition.BEFORE_EXCEPTION, max_body_bytes=settings.max_body_bytes
    )
    app.add_error_handler(ProblemException, problems.on_problem)
    app.add_error_handler(HTTPException, problems.on_problem)
    app.add_error_handler(UnicodeDecodeError, problems.on_undecodable_body)
    app.add_error_handler(Exception, problems.on_unexpected)
    return app


class _Server(uvicorn.Server):
    """uvicorn, telling a supervisor where it listens once it does."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            tier.announce({"rest": self.servers[0].sockets[0].getsockname()[1]})


def uvicorn_server(settings: RestSettings, app: connexion.AsyncApp | None = None) -> uvicorn.Server:
    """A uvicorn server for the app on settings.host:port, logging through our JSON handlers."""
    config = uvicorn.Config(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return _Server(config)


def serve(settings: RestSettings) -> int:
    """Entry point of `lambdallm rest`: JSON logs, serve until SIGTERM or SIGINT."""
    logs.configure("rest")
    app = create_app(settings)  # a bad key or CA setting stops the tier before it listens
    sock = tier.bind_tcp(settings.host, settings.port)
    tier.listen(sock)
    server = uvicorn_server(settings, app)
    server.run(sockets=[sock])
    return 0 if server.started else 1

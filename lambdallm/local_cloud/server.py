"""Run the local cloud: the local Bedrock endpoint and the local API Gateway in one process and event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import uvloop

from lambdallm import logs, tier, tracing
from lambdallm.http_protocol import BedrockHttpProtocol, ProblemHttpProtocol, connection_limits
from lambdallm.local_cloud.apigateway import CONCURRENCY, ApiGateway
from lambdallm.local_cloud.bedrock import create_bedrock_app
from lambdallm.local_cloud.engines import Engine, create_engine
from lambdallm.local_cloud.malloc_arenas import bound_malloc_arenas
from lambdallm.local_cloud.metrics import CloudMetrics, apigateway_route
from lambdallm.local_cloud.models import MODEL_FILES, MODEL_INSTRUCT, MODEL_NAMES, ModelHost, ServedModel
from lambdallm.local_cloud.scheduler import Scheduler
from lambdallm.local_cloud.sigv4 import SigV4Verifier
from lambdallm.metrics import Measured
from lambdallm.settings import CloudSettings
from llm_lambda.config import FunctionConfig
from llm_lambda.handler import Function
from llm_lambda.handler import logger as function_logger

logger = logging.getLogger("lambdallm.local_cloud")
BEDROCK_CONNECT_TIMEOUT_S = 2
REGION = "us-east-1"  # the local cloud's one region: the Lambda's, and the one requests are signed for
# The young generation's threshold (Python's is 700): requests here leave no cycles (tests/local_cloud/
# test_garbage.py), and at 64 connections collections fell from 0.20 to 0.09 ms of CPU a request. At 7,000 they
# were 0.01, but under abandoned streams the process's memory peaked 2 to 6 MB higher, with no garbage behind it.
YOUNG_GC_THRESHOLD = 2000


@dataclass(frozen=True)
class LocalCloud:
    """A running local cloud: where each server listens."""

    settings: CloudSettings
    apigw_port: int
    bedrock_port: int

    @property
    def apigw_url(self) -> str:
        """The backend URL (the gRPC proxy's `backend_url`)."""
        return f"http://{self._dialable_host}:{self.apigw_port}"

    @property
    def bedrock_url(self) -> str:
        """The Bedrock Runtime endpoint URL (boto3's `endpoint_url`)."""
        return f"http://{self._dialable_host}:{self.bedrock_port}"

    @property
    def _dialable_host(self) -> str:
        # Listening on every interface (a container), the Lambda in this process still dials loopback.
        return "127.0.0.1" if self.settings.host in ("0.0.0.0", "") else self.settings.host


class _Server(uvicorn.Server):
    # Two servers share one loop; the caller owns the signals.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def function_config(settings: CloudSettings, bedrock_url: str) -> FunctionConfig:
    """What the Lambda would be configured with: both served models allowed (the default first, Gemma a base
    model), the SDK pointed at the local Bedrock, with dummy credentials of its own (the host's AWS_PROFILE,
    AWS_ENDPOINT_URL and credential files take no part)."""
    return FunctionConfig(
        model_id=settings.model_id,
        other_model_ids=(settings.gemma_model_id,),
        base_model_ids=(settings.gemma_model_id,),
        region=REGION,
        # The function's time budget as the SAM template splits it: connect, read, 1 s to spare.
        connect_timeout_s=BEDROCK_CONNECT_TIMEOUT_S,
        read_timeout_s=settings.lambda_timeout_s - BEDROCK_CONNECT_TIMEOUT_S - 1,
        # Every invocation in flight keeps its connection to Bedrock (botocore's pool holds 10 by default).
        max_pool_connections=CONCURRENCY,
        log_prompts=settings.log_prompts,
        endpoint_url=bedrock_url,
        access_key_id="local",
        secret_access_key="local",
    )


def verifier_for(settings: CloudSettings) -> SigV4Verifier | None:
    """With apigw_auth = "iam", the API Gateway's SigV4 check against the configured key pair."""
    if settings.apigw_auth != "iam":
        return None
    return SigV4Verifier(settings.apigw_access_key_id, settings.apigw_secret_access_key, REGION)


def load_functions(config: FunctionConfig) -> dict[str, Any]:
    """The handlers of one function environment built from `config`, by the function names of
    deploy/template.yaml; each call has its own Bedrock client, so two local clouds in one process stay apart."""
    function = Function(config)
    return {"QueryFunction": function.lambda_handler, "QueryStreamFunction": function.stream_handler}


def _server(app: Any, grace_s: int, settings: CloudSettings, http: type[ProblemHttpProtocol]) -> _Server:
    # Idle keep-alive connections stay open keep_alive_s (75 s; uvicorn's default is 5 s). A client that reuses a
    # pooled connection at the instant the server closes it gets a reset; the Lambda makes one Bedrock attempt and
    # the proxy does not resend a POST, so that race would be a 503. The clients' own idle limits are shorter (the
    # proxy's pool: 30 s), and the Lambda's boto3 pool is reused at least every few seconds under load.
    config = uvicorn.Config(
        app,
        http=http.with_limits(connection_limits(settings)),
        log_config=None,
        lifespan="off",
        access_log=False,
        # API Gateway's sourceIp is the peer's address: an X-Forwarded-For a client sends does not change it (and
        # the middleware that would read one cost every request a copy of its headers).
        proxy_headers=False,
        timeout_graceful_shutdown=grace_s,
        timeout_keep_alive=settings.keep_alive_s,
    )
    return _Server(config)


@contextlib.asynccontextmanager
async def start_local_cloud(
    settings: CloudSettings, engine: Engine | None = None, on_bound: Callable[[LocalCloud], None] | None = None
) -> AsyncIterator[LocalCloud]:
    """Start both servers (port 0 picks a free port), load the models, and stop everything on exit.

    `engine` replaces the models `settings.engine` names, under every model id (tests pass their own); `on_bound`
    learns the ports as soon as both are bound, before the models load. The Bedrock endpoint accepts connections
    at once (its GET /ping answers 200 once the models are loaded); the API Gateway only once they are, so that a
    backend that answers is a backend that can generate (the chain's readiness).
    """
    bedrock_sock = tier.bind_tcp(settings.host, settings.bedrock_port)
    try:
        apigw_sock = tier.bind_tcp(settings.host, settings.apigw_port)
    except tier.CannotListen:
        bedrock_sock.close()
        raise
    cloud = LocalCloud(settings, apigw_sock.getsockname()[1], bedrock_sock.getsockname()[1])
    host = ModelHost(settings.model_id, settings.gemma_model_id)
    gateway = ApiGateway(
        load_functions(function_config(settings, cloud.bedrock_url)),
        settings.lambda_timeout_s,
        timeouts={"QueryStreamFunction": settings.stream_lambda_timeout_s},
        verifier=verifier_for(settings),
    )
    metrics = CloudMetrics(host)
    measured_gateway = Measured(gateway, metrics.apigateway, apigateway_route(gateway.routes))
    # A stop lets invocations in flight run to the function's timeout, as Lambda does.
    grace_s = math.ceil(settings.lambda_timeout_s)
    servers = [
        _server(
            tracing.traced_asgi(create_bedrock_app(host, metrics), "lambdallm-bedrock"),
            grace_s,
            settings,
            BedrockHttpProtocol,
        ),
        _server(tracing.traced_asgi(measured_gateway, "lambdallm-apigateway"), grace_s, settings, ProblemHttpProtocol),
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        tier.listen(bedrock_sock)
        tasks.append(asyncio.create_task(servers[0].serve([bedrock_sock])))
        logger.info("Bedrock Runtime listening", extra={"url": cloud.bedrock_url, "port": cloud.bedrock_port})
        if on_bound:
            on_bound(cloud)
        for key, model_file in MODEL_FILES.items():
            loaded = engine if engine is not None else await asyncio.to_thread(create_engine, settings, model_file)
            host.models[key] = ServedModel(
                MODEL_NAMES[key],
                Scheduler(loaded, settings.queue_size),
                loaded.chat_template,
                instruct=loaded.instruct and MODEL_INSTRUCT[key],
                continues=loaded.instruct and not MODEL_INSTRUCT[key],
                grammars=loaded.grammars,
            )
            logger.info("model loaded", extra={"engine": type(loaded).__name__, "model": MODEL_NAMES[key]})
        host.loaded.set()
        tier.listen(apigw_sock)
        tasks.append(asyncio.create_task(servers[1].serve([apigw_sock])))
        logger.info("API Gateway listening", extra={"url": cloud.apigw_url, "port": cloud.apigw_port})
        yield cloud
    finally:
        # The API Gateway first: its invocations in flight still call Bedrock, which stops only once they are done.
        for server, task in reversed(list(zip(servers, tasks, strict=False))):
            server.should_exit = True
            await asyncio.gather(task, return_exceptions=True)
        for sock in (bedrock_sock, apigw_sock):
            sock.close()
        host.close()
        gateway.close()


@contextlib.contextmanager
def running_local_cloud(settings: CloudSettings, engine: Engine | None = None) -> Iterator[LocalCloud]:
    """`start_local_cloud` on its own event loop in a background thread, for synchronous callers and fixtures."""
    ready = threading.Event()
    result: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        result["stop"] = (asyncio.get_running_loop(), stop)
        try:
            async with start_local_cloud(settings, engine) as cloud:
                result["cloud"] = cloud
                ready.set()
                await stop.wait()
        except BaseException as exc:
            result["error"] = exc
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="local-cloud", daemon=True)
    thread.start()
    ready.wait()
    if "error" in result:
        thread.join()
        raise RuntimeError("the local cloud did not start") from result["error"]
    try:
        yield result["cloud"]
    finally:
        loop, stop = result["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join()


def serve(settings: CloudSettings) -> int:
    """Run the local cloud until Ctrl-C or SIGTERM; 0 on a clean stop."""
    bound_malloc_arenas()  # before any thread starts (the tracer's exporter, the Lambda threads)
    logs.configure("local-cloud")
    if tracing.configure(settings, "lambdallm-lambda"):  # the process's own provider is the function's
        tracing.instrument_botocore()
    return uvloop.run(_serve(settings))  # libuv's loop: a third less CPU per request than asyncio's own


async def _serve(settings: CloudSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with start_local_cloud(settings, on_bound=_announce):
        logs.write_on_loop(loop, function_logger)  # the function threads' lines, as Lambda takes a function's output
        tier.settle(young_threshold=YOUNG_GC_THRESHOLD)
        await stop.wait()
        logger.info("stopping")
    return 0


def _announce(cloud: LocalCloud) -> None:
    tier.announce({"apigw": cloud.apigw_port, "bedrock": cloud.bedrock_port})

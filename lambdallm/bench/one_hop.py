"""Issue 28's reference: a one-hop OpenAI-compatible gateway over the same local Bedrock as the chain, in the
design of the most used Bedrock gateway (aws-samples/bedrock-access-gateway): FastAPI with pydantic request and
response models, a bearer API key checked by a dependency, boto3's Converse called in Starlette's thread pool,
one uvicorn worker (uvloop and httptools, as `uvicorn[standard]` gives it). The chain's four tiers are held to its
latency and throughput in the same run (`plumbing.one_hop_gateway` in latest.json).

Its boto3 client is the Lambda's, configured the same way (`function_config`: the pool of 64 connections, the
timeouts, the dummy credentials). Run as `python -m lambdallm.bench.one_hop` with the local cloud's settings in
the environment; never shipped.
"""

from __future__ import annotations

import hmac
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from fastapi import Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from lambdallm.bench.beside import beside
from lambdallm.bench.loadgen import LoadResult, wrk
from lambdallm.stack import Stack

PATH = "/api/v1/chat/completions"
KEY_VARIABLE = "LAMBDALLM_ONE_HOP_KEY"  # the bearer key it takes: the REST tier's, so wrk sends the same header
LOG_NAME = "one-hop"


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[Message]
    max_tokens: int = 2048
    temperature: float | None = None


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: ChoiceMessage
    finish_reason: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


def create_app(bedrock: Any, model_id: str, api_key: str) -> FastAPI:
    """The gateway's FastAPI app: `POST /api/v1/chat/completions` through `bedrock`'s Converse on `model_id`."""
    bearer = HTTPBearer()

    def key_holder(credentials: HTTPAuthorizationCredentials = Depends(bearer)) -> None:  # noqa: B008 (FastAPI)
        if not hmac.compare_digest(credentials.credentials, api_key):
            raise HTTPException(status_code=401, detail="Invalid API Key")

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "OK"}

    @app.post(PATH, response_model=ChatResponse, dependencies=[Depends(key_holder)])
    async def chat_completions(request: ChatRequest) -> ChatResponse:
        system = [{"text": m.content} for m in request.messages if m.role == "system"]
        messages = [{"role": m.role, "content": [{"text": m.content}]} for m in request.messages if m.role != "system"]
        inference: dict[str, Any] = {"maxTokens": request.max_tokens}
        if request.temperature is not None:
            inference["temperature"] = request.temperature
        call: dict[str, Any] = {"modelId": model_id, "messages": messages, "inferenceConfig": inference}
        if system:  # Titan takes no system prompt at all, not even an empty one
            call["system"] = system
        answer = await run_in_threadpool(lambda: bedrock.converse(**call))
        usage = answer["usage"]
        return ChatResponse(
            id=f"chatcmpl-{uuid.uuid4().hex[:8]}",
            created=int(time.time()),
            model=request.model or model_id,
            choices=[
                Choice(
                    index=0,
                    message=ChoiceMessage(
                        content="".join(b.get("text", "") for b in answer["output"]["message"]["content"])
                    ),
                    finish_reason="length" if answer["stopReason"] == "max_tokens" else "stop",
                )
            ],
            usage=Usage(
                prompt_tokens=usage["inputTokens"],
                completion_tokens=usage["outputTokens"],
                total_tokens=usage["totalTokens"],
            ),
        )

    return app


def serve() -> int:
    """Serve the gateway on a free loopback port, announced as `one_hop`, until SIGTERM."""
    import uvicorn

    from lambdallm import settings, tier
    from lambdallm.local_cloud.server import function_config

    cloud = settings.load(settings.CloudSettings, "local-cloud")
    bedrock = function_config(cloud, f"http://127.0.0.1:{cloud.bedrock_port}").bedrock_client()
    app = create_app(bedrock, cloud.model_id, os.environ[KEY_VARIABLE])
    sock = tier.bind_tcp("127.0.0.1", 0)
    tier.listen(sock)
    tier.announce({"one_hop": sock.getsockname()[1]})
    server = uvicorn.Server(uvicorn.Config(app))  # its access log on, as uvicorn runs an app by default
    server.run(sockets=[sock])
    return 0


@dataclass(frozen=True)
class Gateway:
    """The running reference gateway: where it listens, and its process (whose CPU the bench reads)."""

    port: int
    pid: int


@contextmanager
def one_hop_gateway(stack: Stack) -> Iterator[Gateway]:
    """The reference gateway in front of `stack`'s local Bedrock, taking the stack's API key, once it has answered
    one request; stopped on exit."""
    key = stack.auth_headers["Authorization"].split()[-1]
    with beside(stack, ["lambdallm.bench.one_hop"], LOG_NAME, "one_hop", {KEY_VARIABLE: key}) as (port, process):
        ask(port, stack.auth_headers, "Hello", 1)  # its imports, client and first-call paths warm
        yield Gateway(port, process.pid)


def load(
    gateway: Gateway, stack: Stack, prompt: str, max_tokens: int, connections: int, duration_s: float
) -> LoadResult:
    """The gateway under wrk, as `entry.load` loads the chain's entry points."""
    url = f"http://127.0.0.1:{gateway.port}{PATH}"
    return wrk(url, chat_body(prompt, max_tokens), connections, duration_s, headers=stack.auth_headers)


def markdown_row(figures: dict[str, Any], cell: Callable[[dict[str, float]], str]) -> tuple[str, str]:
    """The row of latest.md: the reference's one-client p50, 64-connection requests/s and CPU per request, and the
    chain's over them, each as `cell` writes a spread."""
    name = (
        "one-hop gateway (FastAPI + boto3 Converse) over the same Bedrock, the reference: p50 one client / requests/s "
        "64 connections / CPU ms per request (gateway + cloud); whole chain over it: p50 / requests/s / CPU"
    )
    cpu, over = figures["cpu_ms_per_request"], figures["chain_over_one_hop"]
    mine = (
        f"{cell(figures['p50_ms_c1'])} ms / {cell(figures['rps_c64'])} / {cell(cpu['gateway'])} + {cell(cpu['cloud'])}"
    )
    return name, f"{mine}; {cell(over['p50_c1'])} / {cell(over['rps_c64'])} / {cell(over['cpu_ms_per_request'])}"


def chat_body(prompt: str, max_tokens: int) -> dict[str, Any]:
    """The chain's /query request as the gateway takes it: one user turn, at temperature 0."""
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0.0}


def ask(port: int, headers: dict[str, str], prompt: str, max_tokens: int) -> dict[str, Any]:
    """One chat completion from the gateway on `port` (a RuntimeError for anything but 200)."""
    answer = httpx.post(
        f"http://127.0.0.1:{port}{PATH}", json=chat_body(prompt, max_tokens), headers=headers, timeout=60
    )
    if answer.status_code != 200:
        raise RuntimeError(f"the one-hop gateway answered {answer.status_code}: {answer.text[:200]}")
    result: dict[str, Any] = answer.json()
    return result


if __name__ == "__main__":
    sys.exit(serve())

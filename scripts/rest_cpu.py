"""The REST tier's own CPU per request, without a socket (issue 28): the shipped ASGI app against a bare one.

Both are driven in this process, as uvicorn would drive them, with the same `POST /query` (a valid key, a valid
body), against the proxy and local cloud (instant engine) of a chain started for the run. The bare app does only what no
REST tier can skip: it reads the body, makes the same gRPC call through the same `ProxyClient`, and writes the
JSON answer. The shipped app is `create_app` with everything (Connexion's routing, security and validation both
ways, our middleware, admission, each key's limits, metrics). So shipped - bare is what the tier's layers cost,
and the measure of any flattening of them; neither figure has uvicorn's protocol or the socket in it.

    .venv/bin/python scripts/rest_cpu.py            # alternating runs, CPU ms per request of each
    .venv/bin/python scripts/rest_cpu.py --profile  # cProfile of the shipped app to /tmp/rest_cpu.prof

It is not a bench section: process CPU time in one process needs no quiet machine to compare two apps run in
turn, which is what it is for while the REST tier's request path changes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import uvloop

from lambdallm import settings
from lambdallm.rest.app import create_app
from lambdallm.rest.llm import generate_text
from lambdallm.rest.metrics import RestMetrics
from lambdallm.stack import Ports, Stack

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
BODY = b'{"prompt": "hello there", "max_tokens": 8}'


async def request(app: App, state: dict[str, Any], authorization: bytes) -> None:
    """One `POST /query` through `app`; an AssertionError unless it is a 200."""
    sent: list[dict[str, Any]] = []
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # a client that stays: the app's hang-up watch ends with the app
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"authorization", authorization)]
    headers.append((b"content-length", str(len(BODY)).encode()))
    scope = {
        **{"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http"},
        **{"path": "/query", "raw_path": b"/query", "query_string": b"", "root_path": "", "headers": headers},
        **{"client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "extensions": {}, "state": dict(state)},
    }
    await app(scope, receive, send)
    assert sent and sent[0]["status"] == 200, sent


def bare_app(shipped: App) -> App:
    """The least a REST tier does for `POST /query`: the body in, the gRPC call, the JSON answer out."""
    tokens = RestMetrics(1).tokens

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # the shipped app's: it opens the channel to the proxy
            await shipped(scope, receive, send)
            return
        body = json.loads((await receive())["body"])
        answer = await generate_text(scope["state"]["llm"], body, "rest-cpu", 25.0, tokens)
        out = json.dumps(answer).encode()
        length = str(len(out)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


async def measure(apps: dict[str, App], authorization: bytes, rounds: int, count: int, concurrency: int) -> None:
    """Start each app's lifespan, then run `count` requests through each in turn, `rounds` times."""
    states: dict[str, dict[str, Any]] = {}
    endings = []
    for name, app in apps.items():
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        states[name] = {}
        await inbox.put({"type": "lifespan.startup"})
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": states[name]}
        endings.append((inbox, asyncio.ensure_future(app(scope, inbox.get, outbox.put))))
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
    for _ in range(rounds):
        for name, app in apps.items():

            async def client(app: App = app, state: dict[str, Any] = states[name]) -> None:
                for _ in range(count // concurrency):
                    await request(app, state, authorization)

            started = time.process_time()
            await asyncio.gather(*(client() for _ in range(concurrency)))
            cpu_ms = (time.process_time() - started) * 1000 / (count // concurrency * concurrency)
            print(f"{name}: {cpu_ms:.3f} ms of CPU per request", flush=True)
    for inbox, ending in endings:
        await inbox.put({"type": "lifespan.shutdown"})
        await ending


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000, help="per app and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", action="store_true", help="cProfile the shipped app to /tmp/rest_cpu.prof")
    args = parser.parse_args()
    # The whole chain, for its proxy and local cloud (its own REST tier idles): the in-process apps call that proxy.
    with open(os.devnull, "w") as log, Stack(Ports.any(), engine="instant", log=log) as stack:
        key = "rest-cpu-key-0123456789"
        config = settings.load(settings.RestSettings, "rest", None)
        target = f"127.0.0.1:{stack.ports.grpc}"
        config = replace(config, grpc_target=target, grpc_token=stack.proxy_token, api_keys=key)
        shipped: App = create_app(config)
        apps = {"shipped": shipped} if args.profile else {"bare": bare_app(shipped), "shipped": shipped}
        authorization = f"Bearer {key}".encode()
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        uvloop.run(measure(apps, authorization, args.rounds, args.requests, args.concurrency))
        if profile is not None:
            profile.disable()
            profile.dump_stats("/tmp/rest_cpu.prof")
            print("cProfile of the shipped app in /tmp/rest_cpu.prof")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

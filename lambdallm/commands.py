"""`lambdallm up` and `lambdallm demo`: the chain (`lambdallm.stack`) run in this terminal, with the secrets made
for the run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lambdallm import settings
from lambdallm.stack import TIERS, Ports, Stack, StackError, new_api_key

RUN_KEY_FILE = Path(".lambdallm") / "api-key"
RUN_TOKEN_FILE = Path(".lambdallm") / "proxy-token"  # the proxy's token for this run of `up` (grpcurl -H ...)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def tiers_to_run() -> tuple[str, ...]:
    """The tiers `up` starts: the local cloud only if the proxy's backend is the local API Gateway, the proxy
    only if the REST tier's gRPC target is the local proxy, so configuration can point the front tiers elsewhere."""
    cloud = settings.load(settings.CloudSettings, "local-cloud")
    proxy = settings.load(settings.ProxySettings, "proxy")
    rest = settings.load(settings.RestSettings, "rest")
    if rest.grpc_target != f"{proxy.host}:{proxy.port}":
        return ("rest",)
    if proxy.backend_url.rstrip("/") != f"http://{cloud.host}:{cloud.apigw_port}":
        return ("proxy", "rest")
    return TIERS


def run_key() -> str | None:
    """A new key for this run of `up`, written to RUN_KEY_FILE (owner-only), when the REST tier's configuration
    asks for keys and sets none; None when it sets its own or opens the API (auth none)."""
    rest = settings.load(settings.RestSettings, "rest")
    if rest.auth == "none" or rest.api_keys or rest.api_keys_file:
        return None
    key = new_api_key()
    write_secret(RUN_KEY_FILE, key)
    return key


def write_secret(path: Path, secret: str) -> None:
    """Write `secret` to a new file readable by its owner only."""
    path.parent.mkdir(exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a file left by another user or mode is replaced, never reused
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret + "\n")


def _banner(stack: Stack) -> str:
    where = {
        "rest": f"REST {stack.rest_url} (Swagger UI at {stack.rest_url}/ui/)",
        "proxy": f"gRPC 127.0.0.1:{stack.ports.grpc} (metrics at :{stack.ports.proxy_metrics}/metrics)",
        "local-cloud": f"API Gateway 127.0.0.1:{stack.ports.apigw}, Bedrock 127.0.0.1:{stack.ports.bedrock}",
    }
    behind = {
        ("rest",): f", in front of the gRPC proxy at {settings.load(settings.RestSettings, 'rest').grpc_target}",
        ("proxy", "rest"): f", in front of {settings.load(settings.ProxySettings, 'proxy').backend_url}",
    }.get(stack.tiers, "")
    key = (
        f"\nThis run's API key is in {RUN_KEY_FILE}: BEDREST_API_KEY=$(cat {RUN_KEY_FILE}) bedrest, "
        f'or curl -H "Authorization: Bearer $(cat {RUN_KEY_FILE})" ...'
        if stack.api_key
        else ""
    )
    token = (
        f"\nThe proxy takes only this run's token, in {RUN_TOKEN_FILE}: "
        f'grpcurl -H "authorization: Bearer $(cat {RUN_TOKEN_FILE})" ...'
        if "proxy" in stack.tiers
        else ""
    )
    return f"λλM is up: {', '.join(where[t] for t in reversed(stack.tiers))}{behind}. Ctrl-C stops all.{key}{token}"


def up(engine: str | None = None) -> int:
    """Run the configured tiers until Ctrl-C or SIGTERM, logs of all tiers in this terminal."""
    stack = Stack(Ports.from_config(), engine=engine, tiers=tiers_to_run(), api_key=run_key())
    if "proxy" in stack.tiers:
        write_secret(RUN_TOKEN_FILE, stack.proxy_token)
    with _sigterm_as_interrupt():
        try:
            with stack:
                print(_banner(stack), flush=True)
                while all(p.poll() is None for p in stack.processes.values()):
                    time.sleep(0.5)
                print("a tier stopped; stopping the others", file=sys.stderr)
                return 1
        except KeyboardInterrupt:
            return 0
        except StackError as exc:
            print(f"lambdallm up: {exc}", file=sys.stderr)
            return 1


def demo(engine: str | None = None, max_tokens: int | None = None) -> int:
    """Bring the chain up on free ports with a key made for the run, run `bedrest passive` through it with that
    key, and stop it."""
    log_path = Path(".lambdallm") / "demo.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log, _sigterm_as_interrupt():
        stack = Stack(Ports.any(), engine=engine, log=log)
        chosen = engine or settings.load(settings.CloudSettings, "local-cloud").engine
        model = "the instant echo model, not a real one" if chosen == "instant" else "a real model"
        print(f"Starting the local cloud ({model}), the gRPC proxy and the REST tier...", flush=True)
        try:
            with stack:
                print(f"The chain is ready at {stack.rest_url} (tier logs: {log_path}).\n", flush=True)
                command = ["bedrest", "--host", "127.0.0.1", "--port", str(stack.ports.rest), "passive"]
                if max_tokens is not None:
                    command[1:1] = ["--max-tokens", str(max_tokens)]
                bedrest = Path(sys.executable).with_name("bedrest")
                command[0] = str(bedrest) if bedrest.exists() else command[0]
                key = {"BEDREST_API_KEY": stack.api_key} if stack.api_key else {}
                return subprocess.run(command, env=os.environ | key).returncode
        except StackError as exc:
            print(f"lambdallm demo: {exc}; see {log_path}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

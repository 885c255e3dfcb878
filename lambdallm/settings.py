"""Typed settings for each tier: defaults, then the tier's TOML file, then environment variables.

A value of the wrong type or out of range stops the tier at start with a `SettingsError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lambdallm.shipped import shipped

T = TypeVar("T")
# `config/` of the working directory first, then the one shipped with the package (a checkout's own when run from it).
CONFIG_DIRS = (Path("config"), shipped("config"))


class SettingsError(ValueError):
    """A configuration value is missing, malformed or out of range; the message names the key."""


def _bounded(low: float | None = None, high: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    return {"low": low, "high": high, "choices": choices}


@dataclass(frozen=True)
class TraceSettings:
    """Every server tier's OpenTelemetry tracing (docs/tracing.md): "none" (the default) imports nothing; "otlp"
    exports spans over OTLP/HTTP to trace_endpoint (empty: the SDK's default) with trace_headers (`k=v,k2=v2`);
    "file" appends them as JSON lines to trace_file. trace_ratio of the traces that start here are sampled."""

    trace_exporter: str = field(default="none", metadata=_bounded(choices=("none", "otlp", "file")))
    trace_endpoint: str = ""
    trace_headers: str = ""
    trace_file: str = ""
    trace_ratio: float = field(default=1.0, metadata=_bounded(0, 1))


@dataclass(frozen=True)
class CloudSettings(TraceSettings):
    """The local cloud: API Gateway in front of the Lambda handler, and a Bedrock Runtime endpoint."""

    host: str = "127.0.0.1"
    apigw_port: int = field(default=3000, metadata=_bounded(0, 65535))
    bedrock_port: int = field(default=4000, metadata=_bounded(0, 65535))
    # "llama" serves the real models through llama.cpp; "instant" a deterministic echo for contract and load tests.
    engine: str = field(default="llama", metadata=_bounded(choices=("llama", "instant")))
    # The id of the default model (SmolLM2-135M-Instruct), the one the Lambda calls; every Titan id reaches it too.
    model_id: str = "amazon.titan-text-premier-v1:0"
    # The id of the second model, Gemma 3 270M (a base model: it continues text); the Lambda allows it too.
    gemma_model_id: str = "google.gemma-3-270m"
    threads: int = field(default=2, metadata=_bounded(1, 256))
    # Each of the `slots` requests generating together has `context_tokens` of the model's context to itself.
    context_tokens: int = field(default=4096, metadata=_bounded(256, 32768))
    slots: int = field(default=8, metadata=_bounded(1, 64))
    # A joining request's prompt enters this many tokens per step, so the others keep generating meanwhile.
    prompt_chunk_tokens: int = field(default=256, metadata=_bounded(16, 8192))
    queue_size: int = field(default=16, metadata=_bounded(0, 10_000))
    # The function's timeout, as in deploy/template.yaml; below API Gateway's 29 s (docs/configuration.md#time-budget).
    lambda_timeout_s: float = field(default=28.0, metadata=_bounded(5, 900))
    # The streaming function's timeout, as in deploy/template.yaml: a stream may outlast the 29 s budget.
    stream_lambda_timeout_s: float = field(default=300.0, metadata=_bounded(5, 900))
    log_prompts: bool = False
    # "iam": the API Gateway checks the SigV4 signature of requests to methods the spec marks AWS_IAM, as AWS
    # does, against this one key pair; "none" lets every request in (as `sam local` does).
    apigw_auth: str = field(default="none", metadata=_bounded(choices=("none", "iam")))
    apigw_access_key_id: str = "local"
    apigw_secret_access_key: str = "local"
    # Both servers' connections (docs/security.md): header block, body, an answer the client does not read; idle
    # keep-alive connections (long: a pooled connection reused as the server closes it would be a 503); at once.
    header_timeout_s: float = field(default=5.0, metadata=_bounded(0.01, 300))
    body_timeout_s: float = field(default=30.0, metadata=_bounded(0.01, 3600))
    write_timeout_s: float = field(default=30.0, metadata=_bounded(0.01, 3600))
    keep_alive_s: int = field(default=75, metadata=_bounded(1, 3600))
    max_connections: int = field(default=1000, metadata=_bounded(1, 100_000))


@dataclass(frozen=True)
class ProxySettings(TraceSettings):
    """The gRPC proxy: where it listens and the backend it forwards to."""

    host: str = "127.0.0.1"
    port: int = field(default=50051, metadata=_bounded(0, 65535))
    backend_url: str = "http://127.0.0.1:3000"
    # Above API Gateway's integration timeout (29 s), so that the backend's own 504 arrives first.
    backend_timeout_s: float = field(default=30.0, metadata=_bounded(0.1, 3600))
    # A whole stream from the backend: above the streaming function's timeout (300 s).
    stream_timeout_s: float = field(default=305.0, metadata=_bounded(0.1, 3600))
    # A stream's tokens made within this many ms of the last message go out with the next one (the first at once;
    # 0: each as it is made): fewer messages through every tier for the same text, first token and pace.
    stream_batch_ms: int = field(default=50, metadata=_bounded(0, 1000))
    connect_timeout_s: float = field(default=2.0, metadata=_bounded(0.01, 60))
    max_connections: int = field(default=100, metadata=_bounded(1, 10_000))
    probe_timeout_s: float = field(default=2.0, metadata=_bounded(0.1, 60))
    grace_s: float = field(default=10.0, metadata=_bounded(0, 600))
    # Generation calls at once; one more is refused at once with RESOURCE_EXHAUSTED (no queue grows here).
    max_in_flight: int = field(default=100, metadata=_bounded(1, 100_000))
    # Prometheus /metrics over HTTP on host:metrics_port (0 picks a free port).
    metrics_port: int = field(default=9464, metadata=_bounded(0, 65535))
    # The /metrics listener's connections, as every HTTP tier's (docs/security.md).
    metrics_header_timeout_s: float = field(default=5.0, metadata=_bounded(0.01, 300))
    metrics_body_timeout_s: float = field(default=5.0, metadata=_bounded(0.01, 3600))
    metrics_write_timeout_s: float = field(default=15.0, metadata=_bounded(0.01, 3600))
    metrics_keep_alive_s: int = field(default=5, metadata=_bounded(1, 3600))
    metrics_max_connections: int = field(default=64, metadata=_bounded(1, 100_000))
    # "iam": sign every backend request with SigV4 (service execute-api), credentials from the standard AWS chain.
    backend_auth: str = field(default="none", metadata=_bounded(choices=("none", "iam")))
    # The region to sign for; empty: the one in an execute-api URL, else us-east-1 (the local cloud's).
    backend_region: str = ""
    # Both set: serve gRPC over TLS with this certificate (PEM, chain included) and its private key.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # "token": every LlmService call must carry `authorization: Bearer <token>` with one of the tokens below
    # (health checking and reflection stay open); "none" lets in any caller that reaches the port.
    auth: str = field(default="token", metadata=_bounded(choices=("token", "none")))
    # Tokens separated by commas (LAMBDALLM_PROXY_TOKENS=t1,t2), and/or a file of tokens, one a line (a secret).
    tokens: str = ""
    tokens_file: str = ""
    # The backend's health is probed at most once per ready_interval_s; checks in between get the last answer.
    ready_interval_s: float = field(default=5.0, metadata=_bounded(0, 3600))
    # Health Watch streams open at once (each holds a stream until its client leaves); one more is RESOURCE_EXHAUSTED.
    max_health_watches: int = field(default=100, metadata=_bounded(1, 100_000))
    # A client connection is asked to move on (HTTP/2 GOAWAY) after this long, so that its channel resolves the
    # proxies again and spreads calls over any added since; calls under way on it run to their end.
    max_connection_age_s: float = field(default=300.0, metadata=_bounded(1, 86_400))


@dataclass(frozen=True)
class RestSettings(TraceSettings):
    """The REST tier: where it listens and the gRPC proxy behind it."""

    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata=_bounded(0, 65535))
    grpc_target: str = "127.0.0.1:50051"
    # Above the proxy's backend_timeout_s, so that the proxy's answer arrives first.
    deadline_s: float = field(default=32.0, metadata=_bounded(0.1, 3600))
    # Deadline of a whole streamed answer (GenerateTextStream); above the proxy's stream_timeout_s.
    stream_deadline_s: float = field(default=310.0, metadata=_bounded(0.1, 3600))
    ready_timeout_s: float = field(default=3.0, metadata=_bounded(0.1, 60))
    # 0: the largest valid request, JSON-escaped (lambdallm/rest/body_limit.py); a value below that stops the tier.
    max_body_bytes: int = field(default=0, metadata=_bounded(0, 64 * 1024 * 1024))
    # Generation requests at once (operations that need the API key, once authenticated and their body is in;
    # streams count until they end); one more is a 429 at once. Nothing else takes a slot.
    max_in_flight: int = field(default=100, metadata=_bounded(1, 100_000))
    # "api_keys": POST /query and /v1 need `Authorization: Bearer <key>` with one of the keys below; "none" opens it.
    auth: str = field(default="api_keys", metadata=_bounded(choices=("api_keys", "none")))
    # Keys separated by commas (LAMBDALLM_REST_API_KEYS=k1,k2), and/or a file of keys, one a line.
    api_keys: str = ""
    api_keys_file: str = ""
    # Talk to the proxy over TLS, trusting the CA certificates of this PEM file (which turns TLS on), else the
    # system's.
    grpc_tls: bool = False
    grpc_ca_file: str = ""
    # Client connections (docs/security.md): the header block, the body and an answer the client does not read
    # each within their time; idle keep-alive connections closed; at most max_connections open at once.
    header_timeout_s: float = field(default=5.0, metadata=_bounded(0.01, 300))
    body_timeout_s: float = field(default=15.0, metadata=_bounded(0.01, 3600))
    write_timeout_s: float = field(default=15.0, metadata=_bounded(0.01, 3600))
    keep_alive_s: int = field(default=5, metadata=_bounded(1, 3600))
    max_connections: int = field(default=1000, metadata=_bounded(1, 100_000))
    # "token": present `grpc_token` (or the one line of `grpc_token_file`, a secret) on every call to the proxy;
    # "none": present nothing (a proxy with auth = "none").
    grpc_auth: str = field(default="token", metadata=_bounded(choices=("token", "none")))
    grpc_token: str = ""
    grpc_token_file: str = ""
    # Named keys with limits of their own (`lambdallm keys add`): a JSON file of ids, hashed secrets and limits,
    # and the pepper of their hashes (a second secret, kept apart from it) (docs/configuration.md#named-keys).
    keys_file: str = ""
    keys_pepper: str = ""
    keys_pepper_file: str = ""
    # Where the keys' counters live: empty, in this process (one replica); redis://host:port/db, shared by replicas.
    redis_url: str = ""
    # Each Redis call's timeout; after a failure Redis is tried again at most once per redis_retry_s.
    redis_timeout_s: float = field(default=0.25, metadata=_bounded(0.01, 10))
    redis_retry_s: float = field(default=2.0, metadata=_bounded(0.1, 300))
    # Redis away: "open" applies each key's limits in this process alone (logged and counted); "closed" refuses
    # limited keys' requests with a 503 until it is back.
    redis_failure: str = field(default="open", metadata=_bounded(choices=("open", "closed")))


def load(
    cls: type[T],
    tier: str,
    path: Path | None = None,
    environ: dict[str, str] | None = None,
    env_prefix: str | None = None,
) -> T:
    """Build `cls` from defaults, `config/<tier>.toml` (or `path`) and `LAMBDALLM_<TIER>_<KEY>` variables.

    `env_prefix` replaces `LAMBDALLM_<TIER>_` (the `bedrest` client reads `BEDREST_<KEY>`). A file named by
    `path` (--config) or `<PREFIX>CONFIG` must exist; without one, the first `config/<tier>.toml` of
    CONFIG_DIRS is read, and defaults apply when there is none.
    """
    environ = dict(os.environ) if environ is None else environ
    prefix = env_prefix or f"LAMBDALLM_{tier.upper().replace('-', '_')}_"
    path = config_file(tier, path, environ.get(f"{prefix}CONFIG"), f"{prefix}CONFIG")
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in fields:
            raise SettingsError(f"{path}: unknown key {key!r} (known: {', '.join(fields)})")
    values = {key: _coerce(f"{path}: {key}", fields[key], value) for key, value in raw.items()}
    for name, spec in fields.items():
        if (text := environ.get(prefix + name.upper())) is not None:
            values[name] = _coerce(prefix + name.upper(), spec, text)
    return cls(**values)


def config_file(tier: str, flag: Path | None, named: str | None, variable: str) -> Path | None:
    """The config file to read: the one the user named (which must exist), else the first one found."""
    for chosen, by in ((flag, "--config"), (Path(named).expanduser() if named else None, variable)):
        if chosen is not None:
            if not chosen.is_file():
                raise SettingsError(f"{chosen}: no such config file (named by {by})")
            return chosen
    return next((d / f"{tier}.toml" for d in CONFIG_DIRS if (d / f"{tier}.toml").is_file()), None)


def _coerce(key: str, spec: dataclasses.Field[Any], value: Any) -> Any:
    kind = spec.type if isinstance(spec.type, str) else spec.type.__name__
    try:
        if kind == "bool":
            value = _to_bool(value)
        elif kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(value)
        elif not isinstance(value, str) or not value:
            raise ValueError(value)
    except ValueError:
        expected = {"float": "a finite number", "str": "a non-empty string"}.get(kind, f"a {kind}")
        raise SettingsError(f"{key}: expected {expected}, got {value!r}") from None
    low, high, choices = (spec.metadata.get(k) for k in ("low", "high", "choices"))
    if (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{key}: {value!r} is outside {low}..{high}")
    if choices and value not in choices:
        raise SettingsError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)

"""`lambdallm probe URL`: whether a tier answers healthy, for container HEALTHCHECKs and scripts.

`http://host:port/path` is healthy on a 2xx answer; `grpc://host:port[/service]` when grpc.health.v1 says
SERVING (the proxy says so only while the backend behind it answers).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit


def probe(url: str, timeout_s: float = 3.0) -> str | None:
    """None when `url` answers healthy, else the reason it does not."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return _probe_http(url, timeout_s)
    if parts.scheme == "grpc" and parts.hostname and parts.port:
        return _probe_grpc(f"{parts.hostname}:{parts.port}", parts.path.strip("/"), timeout_s)
    return f"{url}: expected http://host:port/path or grpc://host:port[/service]"


def _probe_http(url: str, timeout_s: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return None  # urlopen raises for every status outside 2xx-3xx, and follows redirects
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', None) or exc}"


def _probe_grpc(target: str, service: str, timeout_s: float) -> str | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return f"grpc://{target}/{service}: {exc.code().name}"
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return f"grpc://{target}/{service}: {health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)}"
    return None

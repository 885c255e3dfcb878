"""How the REST tier spreads its calls over several proxies, and when it tries another one.

`grpc_target` may name several proxies (`ipv4:10.0.0.1:50051,10.0.0.2:50051`, or `dns:///proxy:50051` for a
Kubernetes headless Service): the channel keeps a connection to each and sends each call to the next one
(round_robin), skipping at once a proxy whose connection broke. Chosen over a load balancer in HTTP/2 mode
(HAProxy) in front of the proxies: no extra hop and process on every call, and the channel sees each proxy's
connection die, where behind a balancer it would see one connection to the balancer.

A call that fails with UNAVAILABLE before its first answer message (the proxy died or could not be reached) is
tried once more on another proxy: for a stream, that is a failure before any token. The proxy marks its own
UNAVAILABLE answers (the backend is unreachable) with `grpc-retry-pushback-ms: -1`, which tells the channel not to
retry them (gRFC A6), so only a lost proxy is retried.
"""

from __future__ import annotations

import json

from generated.llm.v1 import llm_pb2

SERVICE = llm_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)

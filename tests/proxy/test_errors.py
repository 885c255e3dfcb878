"""The proxy's error type as logs and tracebacks show it."""

import grpc

from lambdallm.proxy.errors import ProxyError, invalid_argument


def test_a_proxy_error_reads_as_its_code_and_details() -> None:
    assert str(ProxyError(grpc.StatusCode.INTERNAL, "backend answered HTTP 502")) == (
        "INTERNAL: backend answered HTTP 502"
    )
    assert str(invalid_argument("prompt", "must be 1..32000 characters")) == (
        "INVALID_ARGUMENT: prompt: must be 1..32000 characters"
    )

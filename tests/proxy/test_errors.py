"""The proxy's error type as logs and tracebacks show it."""

import grpc

from lambdallm.proxy.errors import ProxyError


def test_a_proxy_error_reads_as_its_code_and_details() -> None:
    assert str(ProxyError(grpc.StatusCode.INTERNAL, "backend answered HTTP 502")) == (
        "INTERNAL: backend answered HTTP 502"
    )

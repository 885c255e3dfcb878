"""uvicorn's HTTP protocol, answering the requests it cannot parse itself in the error shape of the tier
(uvicorn's own answer is a text/plain 400): a bad method, header or length never reaches the app, so this is the
one place for them. problem+json for the REST tier and the local API Gateway, Bedrock's error for the local
Bedrock."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROBLEM_JSON = b"application/problem+json"
NOT_HTTP = "the request is not valid HTTP/1.1 (request line, a header or the body framing)"


def problem_400(detail: str) -> bytes:
    """The problem+json body of a 400 that uvicorn answers before the app sees the request."""
    problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail}
    return json.dumps(problem).encode()


class ProblemHttpProtocol(HttpToolsProtocol):
    """httptools' protocol whose parser refusals are problem+json."""

    def refusal(self) -> tuple[list[bytes], bytes]:
        """The header lines (without the default ones, the length and `connection`) and the body of the 400."""
        return [b"content-type: " + PROBLEM_JSON + b"\r\n"], problem_400(NOT_HTTP)

    def send_400_response(self, msg: str) -> None:
        lines, body = self.refusal()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [*lines, b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class BedrockHttpProtocol(ProblemHttpProtocol):
    """The local Bedrock's: its parser refusals are a ValidationException, as boto3 reads Bedrock's errors."""

    def refusal(self) -> tuple[list[bytes], bytes]:
        lines = [b"content-type: application/json\r\n", b"x-amzn-errortype: ValidationException:\r\n"]
        return lines, json.dumps({"message": NOT_HTTP}).encode()

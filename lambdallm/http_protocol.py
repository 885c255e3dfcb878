"""uvicorn's HTTP protocol, answering the requests it cannot parse itself with problem+json like every other
error of the tier (uvicorn's own answer is a text/plain 400): a bad method, header or length never reaches the
app, so this is the one place for them."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROBLEM_JSON = b"application/problem+json"


def problem_400(detail: str) -> bytes:
    """The problem+json body of a 400 that uvicorn answers before the app sees the request."""
    problem = {"type": "about:blank", "title": "Bad Request", "status": 400, "detail": detail}
    return json.dumps(problem).encode()


class ProblemHttpProtocol(HttpToolsProtocol):
    """httptools' protocol whose parser refusals are problem+json."""

    def send_400_response(self, msg: str) -> None:
        body = problem_400("the request is not valid HTTP/1.1 (request line, a header or the body framing)")
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: " + PROBLEM_JSON + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()

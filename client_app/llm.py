"""BedREST's one boundary: calls through the generated client, every failure mapped to one ClientError line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from generated.llm_client import Client, errors
from generated.llm_client.api.llm import generate_text
from generated.llm_client.models import GenerateRequest, GenerateResponse, Problem


class ClientError(Exception):
    """A failure to show the user as one line."""


# Transport and decoding failures, most specific first; {url} is the REST tier's base URL.
_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (httpx.ConnectError, "cannot connect to {url}: {exc}"),
    (httpx.TimeoutException, "no answer from {url} in time"),
    (httpx.HTTPError, "HTTP failure talking to {url}: {exc}"),
    (errors.UnexpectedStatus, "{url} answered HTTP {exc.status_code}"),
    (ValueError, "{url} sent an answer that is not the API's JSON"),
    (KeyError, "{url} sent an answer that is not the API's JSON"),
)


@contextmanager
def map_client_errors(url: str) -> Iterator[None]:
    """Translate generated-client and httpx exceptions raised inside the block into ClientError."""
    try:
        yield
    except Exception as exc:
        for kind, text in _FAILURES:
            if isinstance(exc, kind):
                raise ClientError(text.format(url=url, exc=exc)) from exc
        raise


def problem_line(status: int, problem: Problem) -> str:
    """`HTTP 503 Service Unavailable: <detail>` for a problem document."""
    detail = problem.detail if isinstance(problem.detail, str) else ""
    return f"HTTP {status} {problem.title}" + (f": {detail}" if detail else "")


def make_client(base_url: str, timeout_s: float) -> Client:
    """The generated client for the REST tier; it raises on statuses the spec does not list."""
    return Client(base_url=base_url, timeout=httpx.Timeout(timeout_s), raise_on_unexpected_status=True)


def chat_request(line: str, max_tokens: int) -> GenerateRequest:
    """A conversational turn in the `User: ...\nBot:` form Titan models are tuned for; it ends at the next turn."""
    return GenerateRequest(prompt=f"User: {line}\nBot:", max_tokens=max_tokens, stop_sequences=["User:"])


def generate(client: Client, prompt: str, max_tokens: int, chat: bool = True) -> GenerateResponse:
    """One generation (a chat turn unless `chat` is false); raise ClientError on any failure."""
    url = str(client.get_httpx_client().base_url).rstrip("/")
    body = chat_request(prompt, max_tokens) if chat else GenerateRequest(prompt=prompt, max_tokens=max_tokens)
    with map_client_errors(url):
        response = generate_text.sync_detailed(client=client, body=body)
    if isinstance(response.parsed, GenerateResponse):
        return response.parsed
    if isinstance(response.parsed, Problem):
        raise ClientError(problem_line(response.status_code, response.parsed))
    raise ClientError(f"{url} answered HTTP {response.status_code}")

"""BedREST's one boundary: calls through the generated client, every failure mapped to one ClientError line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import httpx
from httpx_sse import EventSource

from generated.llm_client import AuthenticatedClient, Client, errors
from generated.llm_client.api.llm import generate_text, list_models
from generated.llm_client.models import (
    GenerateRequest,
    GenerateResponse,
    Message,
    MessageRole,
    ModelInfo,
    ModelList,
    Problem,
)
from generated.llm_client.types import UNSET

# The generated client, with the REST tier's API key (AuthenticatedClient) or without.
RestClient = Client | AuthenticatedClient


class ClientError(Exception):
    """A failure to show the user as one line."""


class ContextFull(ClientError):
    """The model's context cannot hold the request (a 400 that says so): a shorter conversation may fit."""


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


def problem_error(status: int, problem: Problem) -> ClientError:
    """The error for a problem document, shown as `HTTP 503 Service Unavailable: <detail>`."""
    detail = problem.detail if isinstance(problem.detail, str) else ""
    line = f"HTTP {status} {problem.title}" + (f": {detail}" if detail else "")
    return ContextFull(line) if status == 400 and "context" in detail else ClientError(line)


def make_client(base_url: str, timeout_s: float, api_key: str = "") -> RestClient:
    """The generated client for the REST tier, sending `api_key` as a bearer token when there is one; it raises
    on statuses the spec does not list."""
    timeout = httpx.Timeout(timeout_s)
    if api_key:
        return AuthenticatedClient(base_url=base_url, token=api_key, timeout=timeout, raise_on_unexpected_status=True)
    return Client(base_url=base_url, timeout=timeout, raise_on_unexpected_status=True)


def conversation_request(turns: Sequence[tuple[str, str]], max_tokens: int, model: str = "") -> GenerateRequest:
    """A conversation, `(role, text)` turns oldest first, ending with the user's; the model answers the last.
    `model` names the model to ask (empty: the deployment's default)."""
    messages = [Message(role=MessageRole(role), content=text) for role, text in turns]
    return GenerateRequest(messages=messages, max_tokens=max_tokens, model=model or UNSET)


def prompt_request(prompt: str, max_tokens: int, model: str = "") -> GenerateRequest:
    """Plain text for the model to continue (no chat template); `model` as in `conversation_request`."""
    return GenerateRequest(prompt=prompt, max_tokens=max_tokens, continuation=True, model=model or UNSET)


def served_models(client: RestClient) -> list[ModelInfo]:
    """GET /models: the models the deployment serves, the default first; raise ClientError on any failure."""
    url = str(client.get_httpx_client().base_url).rstrip("/")
    with map_client_errors(url):
        response = list_models.sync_detailed(client=client)
    if isinstance(response.parsed, ModelList):
        return response.parsed.models
    if isinstance(response.parsed, Problem):
        raise problem_error(response.status_code, response.parsed)
    raise ClientError(f"{url} answered HTTP {response.status_code}")


def generate(
    client: RestClient, body: GenerateRequest, on_text: Callable[[str], None] | None = None
) -> GenerateResponse:
    """One generation; raise ClientError (ContextFull when the model's context is too small) on any failure.

    With `on_text`, the answer is streamed (server-sent events) and `on_text` gets each piece as it arrives.
    """
    url = str(client.get_httpx_client().base_url).rstrip("/")
    if on_text is not None:
        with map_client_errors(url):
            return _stream(client, body, on_text, url)
    with map_client_errors(url):
        response = generate_text.sync_detailed(client=client, body=body)
    if isinstance(response.parsed, GenerateResponse):
        return response.parsed
    if isinstance(response.parsed, Problem):
        raise problem_error(response.status_code, response.parsed)
    raise ClientError(f"{url} answered HTTP {response.status_code}")


def _stream(client: RestClient, body: GenerateRequest, on_text: Callable[[str], None], url: str) -> GenerateResponse:
    """POST /query asking for text/event-stream, through the generated client's own httpx client."""
    headers = {"Accept": "text/event-stream"}
    with client.get_httpx_client().stream("POST", "/query", json=body.to_dict(), headers=headers) as response:
        if response.status_code != 200:
            response.read()
            raise problem_error(response.status_code, Problem.from_dict(response.json()))
        for event in EventSource(response).iter_sse():
            if event.event == "text":
                on_text(event.json()["text"])
            elif event.event == "done":
                return GenerateResponse.from_dict(event.json())
            elif event.event == "error":
                data = event.json()
                raise problem_error(int(data["status"]), Problem.from_dict(data))
    raise ClientError(f"{url} ended the stream without its final event")

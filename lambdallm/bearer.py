"""Bearer tokens between tiers: reading them from settings, and presenting one on every gRPC call of a channel."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from lambdallm.settings import SettingsError

# What a bearer token can be (RFC 6750's b64token), so that it travels in a header or metadata unchanged.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")


def read_tokens(text: str, file: str, key: str) -> list[str]:
    """The tokens of `text` (comma or whitespace separated) and of the lines of `file`; a SettingsError naming
    `key` (never a token) when the file cannot be read or a token has characters a bearer token cannot carry."""
    if file:
        try:
            text += "\n" + Path(file).expanduser().read_text()
        except OSError as exc:
            raise SettingsError(f"{key}_file: cannot read {file}: {exc.strerror}") from exc
    tokens = [token for token in re.split(r"[,\s]+", text) if token]
    for number, token in enumerate(tokens, 1):
        if not _TOKEN.match(token):
            raise SettingsError(f"{key}: token {number} has characters a bearer token cannot carry")
    return tokens


def _with_token(details: grpc.aio.ClientCallDetails, authorization: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), authorization)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _PresentOnUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, authorization: tuple[str, str]) -> None:
        self._authorization = authorization

    async def intercept_unary_unary(
        self, continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_with_token(details, self._authorization), request)


class _PresentOnStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, authorization: tuple[str, str]) -> None:
        self._authorization = authorization

    async def intercept_unary_stream(
        self, continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_with_token(details, self._authorization), request)


def present_token(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Channel interceptors that add `authorization: Bearer <token>` to the metadata of every unary and
    server-streaming call (grpc.aio files each interceptor under one kind of call, hence two)."""
    authorization = ("authorization", f"Bearer {token}")
    return [_PresentOnUnary(authorization), _PresentOnStream(authorization)]

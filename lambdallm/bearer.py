"""Bearer tokens between tiers: reading them from settings, and the metadata that presents one on a gRPC call."""

from __future__ import annotations

import re
from pathlib import Path

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


def authorization_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata that presents `token` to the proxy; empty for no token (a proxy with auth = "none")."""
    return (("authorization", f"Bearer {token}"),) if token else ()

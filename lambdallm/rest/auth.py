"""API keys of the REST tier: the operator's keys, checked in constant time by Connexion's bearer security."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connexion.exceptions import OAuthProblem
from connexion.security import BearerSecurityHandler, SecurityHandlerFactory

from lambdallm.rest.keyring import Key, KeyRing
from lambdallm.settings import RestSettings, SettingsError

# What an HTTP header can carry as a bearer token (RFC 6750's b64token), so that every key can be sent.
_KEY = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
# How a 401 tells the client to authenticate (RFC 6750); an invalid key adds error="invalid_token".
CHALLENGE = 'Bearer realm="lambdallm"'
KEY = "key"  # where the token info carries the caller's Key (lambdallm/rest/keyring.py) for the limits


def api_keys(settings: RestSettings) -> tuple[bytes, ...]:
    """The keys that open POST /query: `api_keys` and the lines of `api_keys_file`. With `auth = "api_keys"`
    and no key, a SettingsError: the API is never open by accident."""
    if settings.auth == "none":
        return ()
    text = settings.api_keys
    if settings.api_keys_file:
        try:
            text += "\n" + Path(settings.api_keys_file).expanduser().read_text()
        except OSError as exc:
            raise SettingsError(f"api_keys_file: cannot read {settings.api_keys_file}: {exc.strerror}") from exc
    keys = [key for key in re.split(r"[,\s]+", text) if key]
    for number, key in enumerate(keys, 1):
        if not _KEY.match(key):  # the message names the key's position, never the key
            raise SettingsError(f"api_keys: key {number} has characters a bearer token cannot carry")
    if not keys and not settings.keys_file:
        raise SettingsError(
            'auth is "api_keys" but no API key is set: set LAMBDALLM_REST_API_KEYS (k1,k2), api_keys_file or '
            'keys_file (lambdallm keys add), or auth = "none" to open the API to anyone'
        )
    return tuple(key.encode() for key in keys)


def key_ring(settings: RestSettings) -> KeyRing:
    """The operator's keys (`api_keys`, `api_keys_file`, `keys_file`); a SettingsError as `api_keys` says."""
    return KeyRing(settings, api_keys(settings))


def bearer_key(keys: KeyRing, token: str) -> Key | None:
    """The key a bearer `token` is (as the Authorization header carries it after its scheme), or None."""
    # Whitespace around a field value is not part of it (RFC 9110 5.5); Connexion keeps what trails the token.
    return keys.identify(token.strip(" \t"))


def token_info(key: Key) -> dict[str, Any]:
    """What the security check of a request sent with `key` says of its caller: the key's id (`sub`), and the key
    with its limits (KEY, for rest/limits.py)."""
    return {"sub": key.id, KEY: key}


def key_checker(keys: KeyRing) -> Callable[[str], dict[str, Any]]:
    """Connexion's bearer info function for `keys`: which key matched (its id as `sub`, and the key with its
    limits), or a 401 (OAuthProblem)."""

    def check(token: str) -> dict[str, Any]:
        key = bearer_key(keys, token)
        if key is None:
            problem = OAuthProblem(detail="the API key is not valid")
            problem.headers = {"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'}
            raise problem
        return token_info(key)

    return check


def security_map(keys: KeyRing) -> dict[str, type[BearerSecurityHandler]]:
    """Connexion's `security_map`: the spec's bearer scheme checked against the operator's `keys`, or (none: auth
    none) not checked at all."""
    check = key_checker(keys)

    class ApiKeyHandler(BearerSecurityHandler):  # type: ignore[misc]
        def get_fn(self, security_scheme: dict[str, Any], required_scopes: list[str]) -> Any:
            if not keys:
                return SecurityHandlerFactory.verify_none
            return self._get_verify_func(check)

        @staticmethod
        @functools.cache
        def _accepts_kwarg(func: Callable[..., Any], keyword: str) -> bool:
            # Connexion reads the check's signature twice on every request; it never changes.
            return bool(BearerSecurityHandler._accepts_kwarg(func, keyword))

    return {"bearer": ApiKeyHandler}

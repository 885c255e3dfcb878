"""Named API keys: an id (what logs and metrics show), a secret kept only as its HMAC-SHA-256 under a server-side
pepper, and limits of its own, in one JSON keys file (docs/configuration.md#named-keys).

Why HMAC and not a slow KDF: every secret is 32 random bytes (256 bits), so no guess list can find one however
fast the hash is, while scrypt or argon2 would cost tens of milliseconds of CPU on every request (a lever for
anyone with a wrong key). The pepper, kept apart from the keys file (a second secret), makes a leaked keys file
useless even for checking a guess offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdallm.settings import RestSettings, SettingsError

SECRET_PREFIX = "llm_"  # lets secret scanners and people recognise a key
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
ENV_KEY_PREFIX = "api-key-"  # the ids of LAMBDALLM_REST_API_KEYS' keys, by position: named keys may not take them
MIN_PEPPER_CHARS = 16
LIMIT_NAMES = ("requests_per_minute", "tokens_per_minute", "concurrent_streams")


@dataclass(frozen=True)
class Limits:
    """A key's limits; 0 is no limit. Tokens are input plus output, counted from each answer's usage; a stream is
    one generation request in flight, whole or streamed (a whole answer is a collected stream)."""

    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    concurrent_streams: int = 0

    def any(self) -> bool:
        """True when at least one limit is set."""
        return bool(self.requests_per_minute or self.tokens_per_minute or self.concurrent_streams)


UNLIMITED = Limits()


@dataclass(frozen=True)
class KeyRecord:
    """One line of the keys file: never the secret, only its hash."""

    id: str
    hash: str
    created: str
    limits: Limits = field(default_factory=Limits)
    revoked: str = ""  # when it was revoked (ISO 8601); a revoked key opens nothing, its id stays taken


def check_id(key_id: str) -> str:
    """`key_id` if it can be an id (lower case letters, digits, `.`, `_`, `-`; at most 63), else a ValueError."""
    if not _ID.match(key_id) or key_id.startswith(ENV_KEY_PREFIX):
        raise ValueError(
            f"key id {key_id!r}: use 1-63 of a-z 0-9 . _ - starting with a letter or digit, not {ENV_KEY_PREFIX}N"
        )
    return key_id


def new_secret() -> str:
    """A fresh secret: 32 random bytes, URL-safe base64, behind SECRET_PREFIX (a valid bearer token)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(pepper: bytes, secret: str) -> str:
    """The hex HMAC-SHA-256 of `secret` under `pepper`: what the keys file keeps."""
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def pepper(settings: RestSettings) -> bytes:
    """The server-side pepper (`keys_pepper`, else the file `keys_pepper_file`); a SettingsError naming the key
    when it is missing, unreadable or shorter than MIN_PEPPER_CHARS."""
    text, key = settings.keys_pepper, "keys_pepper"
    if not text and settings.keys_pepper_file:
        key = "keys_pepper_file"
        try:
            text = Path(settings.keys_pepper_file).expanduser().read_text().strip()
        except OSError as exc:
            raise SettingsError(f"keys_pepper_file: cannot read {settings.keys_pepper_file}: {exc.strerror}") from exc
    if not text:
        raise SettingsError(
            "keys_file is set but keys_pepper is not: set keys_pepper_file (a file of 32 random bytes, base64, "
            "kept apart from the keys file) or LAMBDALLM_REST_KEYS_PEPPER"
        )
    if len(text) < MIN_PEPPER_CHARS:
        raise SettingsError(f"{key}: the pepper must be at least {MIN_PEPPER_CHARS} characters")
    return text.encode()


def read_keys(path: Path) -> list[KeyRecord]:
    """The records of the keys file at `path` (none if it does not exist yet); a SettingsError naming keys_file
    and the record at fault when it is not a keys file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SettingsError(f"keys_file: cannot read {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
        records = [_record(item) for item in document["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"keys_file: {path} is not a keys file: {exc}") from None
    ids = [record.id for record in records]
    if len(set(ids)) != len(ids):
        raise SettingsError(f"keys_file: {path} names a key id twice")
    return records


def _record(item: dict[str, Any]) -> KeyRecord:
    limits = item.get("limits", {})
    if set(limits) - set(LIMIT_NAMES):
        raise ValueError(f"key {item.get('id')!r}: unknown limits {sorted(set(limits) - set(LIMIT_NAMES))}")
    values = {name: limits.get(name, 0) for name in LIMIT_NAMES}
    if not all(isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values.values()):
        raise ValueError(f"key {item.get('id')!r}: limits are whole numbers >= 0 (0: no limit)")
    if not re.fullmatch(r"[0-9a-f]{64}", str(item["hash"])):
        raise ValueError(f"key {item.get('id')!r}: hash is not a hex SHA-256")
    return KeyRecord(
        id=check_id(str(item["id"])),
        hash=str(item["hash"]),
        created=str(item.get("created", "")),
        limits=Limits(**values),
        revoked=str(item.get("revoked", "")),
    )


def write_keys(path: Path, records: list[KeyRecord]) -> None:
    """Replace the keys file atomically (readable by its owner only), so a tier reading it sees old or new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"keys": [asdict(record) for record in records]}
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)  # mkstemp made it 0600


def add_key(path: Path, pepper_bytes: bytes, key_id: str, limits: Limits) -> str:
    """Add a key named `key_id` with `limits` to the keys file; return its secret (shown once, stored nowhere)."""
    records = read_keys(path)
    if any(record.id == check_id(key_id) for record in records):
        raise ValueError(f"key id {key_id!r} is taken (ids of revoked keys stay taken)")
    secret = new_secret()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    write_keys(path, [*records, KeyRecord(key_id, hash_secret(pepper_bytes, secret), created, limits)])
    return secret


def revoke_key(path: Path, key_id: str) -> None:
    """Mark `key_id` revoked in the keys file (a running tier stops accepting it within a second)."""
    records = read_keys(path)
    if not any(record.id == key_id for record in records):
        raise ValueError(f"no key with id {key_id!r}")
    revoked = datetime.now(UTC).isoformat(timespec="seconds")
    write_keys(path, [replace(r, revoked=r.revoked or revoked) if r.id == key_id else r for r in records])

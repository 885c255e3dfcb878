"""Which key a bearer token is: the plain keys of LAMBDALLM_REST_API_KEYS (no limits) and the named keys of the
keys file (read again within a second of any change, so `lambdallm keys revoke` needs no restart)."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from lambdallm.rest.keys import ENV_KEY_PREFIX, UNLIMITED, KeyRecord, Limits, hash_secret, pepper, read_keys
from lambdallm.settings import RestSettings, SettingsError

log = logging.getLogger("lambdallm.rest")
RELOAD_CHECK_S = 1.0  # how often the keys file's stat is looked at (a kubelet swaps a Secret's file in place)


@dataclass(frozen=True)
class Key:
    """An authenticated caller: its id (never the secret) and its limits."""

    id: str
    limits: Limits


class KeyRing:
    """The keys that open the API. `identify` is constant-time in the plain keys and looks a named key up by its
    HMAC, which says nothing about any secret to whoever times it (the pepper is unknown to them)."""

    def __init__(self, settings: RestSettings, plain: tuple[bytes, ...]) -> None:
        self.plain = plain
        named = settings.keys_file and settings.auth != "none"  # auth none: the API is open, no key is read
        self.path = Path(settings.keys_file).expanduser() if named else None
        self.pepper = pepper(settings) if self.path else b""
        self.by_hash: dict[bytes, Key] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        if self.path is not None:
            self._load(self.path)  # a bad keys file stops the tier at start (SettingsError)

    def __bool__(self) -> bool:
        return bool(self.plain) or self.path is not None

    def identify(self, token: str) -> Key | None:
        """The key `token` is, or None."""
        sent = token.encode()
        matched = 0
        for number, key in enumerate(self.plain, 1):  # every one, whatever matches: the time says nothing
            if hmac.compare_digest(sent, key):
                matched = number
        if matched:
            return Key(f"{ENV_KEY_PREFIX}{matched}", UNLIMITED)
        if self.path is None:
            return None
        self._reload_if_changed(self.path)
        digest = bytes.fromhex(hash_secret(self.pepper, token))
        return self.by_hash.get(digest)

    def _reload_if_changed(self, path: Path) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_S:
            return
        self._checked = now
        try:
            self._load(path)
        except SettingsError as exc:  # keep serving the keys read last; the operator sees why in the log
            log.error("keys file not reloaded", extra={"detail": str(exc)})

    def _load(self, path: Path) -> None:
        try:
            status = path.stat()
            stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
        except OSError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        records = read_keys(path)
        self.by_hash = {bytes.fromhex(r.hash): Key(r.id, r.limits) for r in records if not r.revoked}
        self._stamp = stamp
        log.info("keys file read", extra={"keys": len(self.by_hash), "revoked": _revoked(records)})


def _revoked(records: list[KeyRecord]) -> int:
    return sum(1 for record in records if record.revoked)

"""BedREST's settings: defaults, then a TOML file, then BEDREST_<KEY> variables, then command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lambdallm.settings import load

USER_CONFIG = Path("~/.config/bedrest.toml")


@dataclass(frozen=True)
class ClientSettings:
    """Where the REST tier is and what to ask it."""

    host: str = "127.0.0.1"
    port: int = field(default=8080, metadata={"low": 1, "high": 65535})
    max_tokens: int = field(default=100, metadata={"low": 1, "high": 3072})
    # Above the REST tier's own 32 s deadline, so its 504 arrives before we give up.
    timeout_s: float = field(default=35.0, metadata={"low": 0.1, "high": 3600})
    # Send each line as a conversation turn (the model answers through its chat template); false sends it raw,
    # as text for the model to continue.
    chat: bool = True
    # Print each answer as the model makes it (server-sent events); false waits for the whole answer.
    stream: bool = True
    # How much of the conversation `bedrest active` keeps, in characters; the oldest exchanges go first.
    history_chars: int = field(default=12000, metadata={"low": 0, "high": 30000})
    # The REST tier's API key, sent as `Authorization: Bearer <key>`; better in BEDREST_API_KEY than in a file.
    api_key: str = ""
    # The model to ask, one of `bedrest models`' ids; empty: the deployment's default.
    model: str = ""

    @property
    def base_url(self) -> str:
        """The REST tier's base URL."""
        return f"http://{self.host}:{self.port}"


def config_path(flag: Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """--config, else ~/.config/bedrest.toml unless BEDREST_CONFIG names a file; None leaves the choice to
    `load` (BEDREST_CONFIG, which must exist, else config/bedrest.toml, else the defaults)."""
    environ = dict(os.environ) if environ is None else environ
    if flag is not None or environ.get("BEDREST_CONFIG"):
        return flag
    user = USER_CONFIG.expanduser()
    return user if user.is_file() else None


def load_settings(
    flag_config: Path | None = None, environ: dict[str, str] | None = None, **flags: Any
) -> ClientSettings:
    """The client's settings; flags that are not None win over everything else."""
    path = config_path(flag_config, environ)
    settings = load(ClientSettings, "bedrest", path, environ, env_prefix="BEDREST_")
    return replace(settings, **{key: value for key, value in flags.items() if value is not None})

"""Where the contracts (specs/) and the default config (config/) are: in the installed package or the checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped(folder: str) -> Path:
    """`folder` ("specs" or "config") as the wheel ships it, else the checkout's own (editable or source run)."""
    inside = PACKAGE / "_shipped" / folder
    return inside if inside.is_dir() else PACKAGE.parent / folder

"""`lambdallm keys add|list|revoke|usage`: the named keys of the REST tier's keys file, and their usage."""

from __future__ import annotations

import argparse
import secrets
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lambdallm.rest.keys import Limits, add_key, pepper, read_keys, revoke_key
from lambdallm.rest.usage import REQUESTS, TOKENS
from lambdallm.settings import RestSettings, SettingsError

Table = list[tuple[str, ...]]


def run(settings: RestSettings, args: argparse.Namespace) -> int:
    """Carry out `lambdallm keys <action>`; 0, or 1 with a message on stderr."""
    try:
        if args.action == "usage":
            urls = args.metrics or [f"http://{settings.host}:{settings.port}/metrics"]
            print_table(("key", "model", "requests", "input tokens", "output tokens"), usage_rows(urls))
            return 0
        path = keys_path(settings)
        if args.action == "add":
            limits = Limits(args.rpm, args.tpm, args.streams)
            if min(args.rpm, args.tpm, args.streams) < 0:
                raise ValueError("limits are whole numbers >= 0 (0: no limit)")
            secret = add_key(path, peppered(settings), args.name, limits)
            print(f"key {args.name!r} added; its secret, shown this once:", file=sys.stderr)
            print(secret)
        elif args.action == "revoke":
            revoke_key(path, args.name)
            print(f"key {args.name!r} revoked", file=sys.stderr)
        else:
            print_table(("id", "created", "revoked", "rpm", "tpm", "streams"), list_rows(path))
    except SettingsError:
        raise  # `lambdallm` says "bad configuration" and exits 2
    except (ValueError, OSError) as exc:
        print(f"lambdallm keys {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def keys_path(settings: RestSettings) -> Path:
    """The keys file of the settings; a SettingsError when none is set."""
    if not settings.keys_file:
        raise SettingsError("keys_file is not set: name the keys file in config/rest.toml or LAMBDALLM_REST_KEYS_FILE")
    return Path(settings.keys_file).expanduser()


def peppered(settings: RestSettings) -> bytes:
    """The pepper; a keys_pepper_file that does not exist yet is made (32 random bytes, readable by its owner)."""
    file = Path(settings.keys_pepper_file).expanduser() if settings.keys_pepper_file else None
    if not settings.keys_pepper and file is not None and not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch(mode=0o600)
        file.write_text(secrets.token_urlsafe(32) + "\n")
        print(f"made the pepper file {file}: keep it apart from the keys file", file=sys.stderr)
    return pepper(settings)


def list_rows(path: Path) -> Table:
    """One row per key of the keys file."""
    return [
        (r.id, r.created, r.revoked or "-", *(str(v or "-") for v in vars(r.limits).values())) for r in read_keys(path)
    ]


def usage_rows(urls: list[str]) -> Table:
    """Requests and tokens per key and model, summed over the /metrics of every replica in `urls`."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                column = {f"{REQUESTS}_total": 0, f"{TOKENS}_total": 1 if sample.labels.get("type") == "input" else 2}
                if sample.name in column:
                    sums[(sample.labels["key"], sample.labels["model"])][column[sample.name]] += sample.value
    return [(key, model, *(str(int(v)) for v in row)) for (key, model), row in sorted(sums.items())]


def print_table(header: tuple[str, ...], rows: Table) -> None:
    """Columns aligned, a header line first."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())

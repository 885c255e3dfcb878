"""The `bedrest` command: `bedrest active` (interactive), `bedrest passive` (five fixed prompts) or `bedrest models`
(the models the deployment serves)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from client_app.config import load_settings
from client_app.llm import make_client
from client_app.modes import run_active, run_models, run_passive
from lambdallm.settings import SettingsError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `bedrest`."""
    parser = argparse.ArgumentParser(prog="bedrest", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("active", "passive", "models"), default="active")
    parser.add_argument("--host", help="REST tier host (default 127.0.0.1, env BEDREST_HOST)")
    parser.add_argument("--port", type=int, help="REST tier port (default 8080, env BEDREST_PORT)")
    parser.add_argument("--max-tokens", type=int, help="per generation (default 100, env BEDREST_MAX_TOKENS)")
    parser.add_argument("--timeout", type=float, dest="timeout_s", help="seconds per request (default 130)")
    parser.add_argument(
        "--raw", action="store_const", const=False, dest="chat", help="send prompts as text to continue, not as chat"
    )
    parser.add_argument("--model", help="the model to ask, one of `bedrest models` (default: the deployment's)")
    parser.add_argument("--api-key", help="the REST tier's API key (env BEDREST_API_KEY, which keeps it out of ps)")
    parser.add_argument(
        "--no-stream",
        action="store_const",
        const=False,
        dest="stream",
        help="wait for each whole answer instead of printing it as it is made",
    )
    parser.add_argument(
        "--config", type=Path, help="TOML file (default $BEDREST_CONFIG, ~/.config/bedrest.toml or config/bedrest.toml)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bedrest` console script; errors are one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            max_tokens=args.max_tokens,
            timeout_s=args.timeout_s,
            chat=args.chat,
            stream=args.stream,
            api_key=args.api_key,
            model=args.model,
        )
    except SettingsError as exc:
        print(f"bedrest: bad configuration: {exc}", file=sys.stderr)
        return 2
    try:
        with make_client(settings.base_url, settings.timeout_s, settings.api_key) as client:
            if args.mode == "models":
                return run_models(client)
            if args.mode == "passive":
                return run_passive(
                    client, settings.max_tokens, chat=settings.chat, stream=settings.stream, model=settings.model
                )
            return run_active(
                client,
                settings.max_tokens,
                chat=settings.chat,
                history_chars=settings.history_chars,
                stream=settings.stream,
                model=settings.model,
            )
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

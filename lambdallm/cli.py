"""The `lambdallm` command: start one tier, the whole stack, the demo or the benchmarks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lambdallm import settings, tier

# The pyproject extra that brings each command's dependencies.
EXTRAS = {
    "local-cloud": "local-cloud",
    "proxy": "proxy",
    "rest": "rest",
    "keys": "rest",
    "probe": "proxy",
    "bench": "all,bench",
}


def _local_cloud(args: argparse.Namespace) -> int:
    config = settings.load(settings.CloudSettings, "local-cloud", args.config)
    from lambdallm.local_cloud.server import serve

    return serve(config)


def _proxy(args: argparse.Namespace) -> int:
    config = settings.load(settings.ProxySettings, "proxy", args.config)
    from lambdallm.proxy.server import serve

    return serve(config)


def _rest(args: argparse.Namespace) -> int:
    config = settings.load(settings.RestSettings, "rest", args.config)
    from lambdallm.rest.app import serve

    return serve(config)


def _up(args: argparse.Namespace) -> int:
    from lambdallm.commands import up

    return up(engine=args.engine)


def _demo(args: argparse.Namespace) -> int:
    from lambdallm.commands import demo

    return demo(engine=args.engine, max_tokens=args.max_tokens)


def _bench(args: argparse.Namespace) -> int:
    from lambdallm.bench import run

    return run(quick=args.quick)


def _keys(args: argparse.Namespace) -> int:
    from lambdallm.rest.keys_command import run

    return run(settings.load(settings.RestSettings, "rest", args.config), args)


def _probe(args: argparse.Namespace) -> int:
    from lambdallm.probe import probe

    if (failure := probe(args.url, args.timeout)) is not None:
        print(f"lambdallm probe: {failure}", file=sys.stderr)
        return 1
    return 0


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    """The `keys` subcommands and their options."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a key and print its secret (once: only its hash is kept)")
    add.add_argument("name", help="the key's id: what logs and metrics show (a-z 0-9 . _ -)")
    add.add_argument("--rpm", type=int, default=0, help="requests per minute (0: no limit)")
    add.add_argument("--tpm", type=int, default=0, help="tokens per minute, input plus output (0: no limit)")
    add.add_argument("--streams", type=int, default=0, help="generation requests at once (0: no limit)")
    actions.add_parser("list", help="the keys: id, created, revoked, limits (never a secret)")
    actions.add_parser("revoke", help="revoke a key (a running tier refuses it within a second)").add_argument("name")
    usage = actions.add_parser("usage", help="requests and tokens per key and model, from the replicas' /metrics")
    usage.add_argument("--metrics", action="append", default=[], metavar="URL", help="a replica's /metrics (repeat)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `lambdallm`, one subcommand per entry point."""
    parser = argparse.ArgumentParser(prog="lambdallm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    for name, run, help in (
        ("local-cloud", _local_cloud, "start the local API Gateway + Lambda and the local Bedrock endpoint"),
        ("proxy", _proxy, "start the gRPC proxy"),
        ("rest", _rest, "start the REST tier"),
    ):
        add(name, run, help).add_argument("--config", type=Path, help="TOML file (default config/<tier>.toml)")
    for name, run, help in (
        ("up", _up, "start the local cloud, the proxy and the REST tier together; Ctrl-C stops all"),
        ("demo", _demo, "bring the stack up, run `bedrest passive` through it, and stop it"),
    ):
        sub = add(name, run, help)
        sub.add_argument("--engine", choices=("llama", "instant"), default=None, help="local Bedrock models")
        if name == "demo":
            sub.add_argument("--max-tokens", type=int, default=None, help="per prompt (default: bedrest's)")
    add("bench", _bench, "measure the chain against its references; writes bench/results/").add_argument(
        "--quick", action="store_true", help="a tiny configuration that only checks the bench works"
    )
    sub = add("keys", _keys, "the REST tier's named keys: add, list, revoke, usage (docs/configuration.md)")
    sub.add_argument("--config", type=Path, help="the REST tier's TOML file (default config/rest.toml)")
    _keys_arguments(sub)
    sub = add("probe", _probe, "exit 0 when a tier answers healthy (HTTP 2xx, or gRPC health SERVING)")
    sub.add_argument("url", help="http://host:port/path or grpc://host:port[/service]")
    sub.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lambdallm` console script."""
    args = build_parser().parse_args(argv)
    if args.command in ("local-cloud", "proxy", "rest"):
        tier.follow_supervisor()
    try:
        return int(args.run(args) or 0)
    except settings.SettingsError as exc:
        print(f"lambdallm {args.command}: bad configuration: {exc}", file=sys.stderr)
        return 2
    except tier.CannotListen as exc:
        print(f"lambdallm {args.command}: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("lambdallm."):
            print(f"lambdallm {args.command}: not built yet ({exc.name} is missing)", file=sys.stderr)
        else:
            extra = EXTRAS.get(args.command, "all")
            print(
                f"lambdallm {args.command}: {exc.name} is missing; install it with pip install 'lambdallm[{extra}]'",
                file=sys.stderr,
            )
        return 3


if __name__ == "__main__":
    sys.exit(main())

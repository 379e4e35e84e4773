"""The one console command, `colorbot`, with a subcommand for every job.

Each package contributes its subcommands through a `register(subparsers)` function in
its own `cli.py`; heavy imports (torch, discord) happen inside the handlers, so
`colorbot --help` stays fast and the bot never pulls in torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Packages that add subcommands, in the order they show in --help.
_COMMAND_MODULES = ("bot.cli", "models.cli", "db.cli", "training.cli", "web.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorbot",
        description="Color coloring pages with a family of small neural colorizers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A package without a cli.py yet simply adds no commands.
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The one console command, `colorbot`, with a subcommand for every job.

Each package contributes its subcommands through a `register(subparsers)` function in
its own `cli.py`; heavy imports (torch, discord) happen inside the handlers, so
`colorbot --help` stays fast and the bot never pulls in torch.

Every command reads `.env` (as `docker compose` does; variables already set win), and
every failure ends as one line on stderr and a non-zero exit; `-v` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from colorbot.settings import load_dotenv

# Packages that add subcommands, in the order they show in --help.
_COMMAND_MODULES = ("bot.cli", "models.cli", "db.cli", "training.cli", "web.cli")
# Environment variables whose values must never reach stderr.


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("colorbot")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colorbot",
        description="Color coloring pages with a family of small neural colorizers.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and the traceback when a command fails")
    parser.add_argument("--version", action="version", version=f"colorbot {version()}")
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


def _secrets() -> list[str]:
    """The settings that must never be shown: tokens, the webhook, the database password."""
    from colorbot.settings import Settings

    settings = Settings.from_env()
    values = [settings.discord_token, settings.worker_token, settings.worker_admin_token,
              settings.training_webhook]
    url = settings.database_url
    if url:
        try:
            from sqlalchemy.engine import make_url

            values.append(make_url(url).password or "")
        except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
            pass
    return [v for v in values if len(v) >= 4]


def describe_failure(exc: BaseException) -> str:
    """One line a person can read: the exception's own first line (secrets masked)."""
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else ""
    if isinstance(exc, OSError) and exc.filename and not line:
        line = f"{exc.strerror or 'cannot use'}: {exc.filename}"
    if not line or isinstance(exc, AssertionError | KeyError):
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    for secret in _secrets():
        line = line.replace(secret, "***")
    return line[:400]


def main(argv: list[str] | None = None) -> int:
    load_dotenv()
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
    except Exception as exc:  # noqa: BLE001 - the one place a command's failure ends
        if args.verbose:
            traceback.print_exc()
        hint = "" if args.verbose else " (colorbot -v ... shows the details)"
        print(f"colorbot {args.command}: {describe_failure(exc)}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`colorbot run`: the Discord bot.

Migrates the database first, uses the worker services in WORKER_URLS (or colors in
this process when it is empty), and runs until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

from colorbot.settings import load_dotenv

if TYPE_CHECKING:
    from colorbot.settings import Settings

__all__ = ["load_dotenv", "register", "run_bot"]

log = logging.getLogger(__name__)

HOW_TO_GET_A_TOKEN = """\
colorbot run needs a Discord bot token in DISCORD_TOKEN.

  1. Open https://discord.com/developers/applications and create an application.
  2. Bot tab: "Reset Token", copy it; turn on the privileged "Message Content Intent".
  3. Put it in .env (see .env.example) or export DISCORD_TOKEN=... and run again.
  4. Invite the bot: OAuth2 > URL Generator, scopes "bot" and "applications.commands".
"""


def register(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter

    run = subparsers.add_parser(
        "run", help="run the Discord bot", formatter_class=DefaultsHelpFormatter,
        description="Run the Discord bot until Ctrl-C / SIGTERM. Reads DISCORD_TOKEN and the "
        "other settings from the environment or ./.env (see .env.example); colors in this "
        "process unless WORKER_URLS names worker services.",
    )
    run.add_argument("--no-upgrade", action="store_true",
                     help="do not migrate the database before starting (default: migrate)")
    run.set_defaults(handler=run_bot)


def run_bot(args: argparse.Namespace) -> int:
    from colorbot.settings import Settings

    load_dotenv()
    settings = Settings.from_env()
    if not settings.discord_token:
        print(HOW_TO_GET_A_TOKEN, file=sys.stderr)
        return 2
    from bot.logs import redact_token_everywhere

    redact_token_everywhere(settings.discord_token)
    return asyncio.run(_run(settings, upgrade=not getattr(args, "no_upgrade", False)))


async def _run(settings: Settings, upgrade: bool = True) -> int:
    import discord

    from bot.app import ColorBot
    from db import Database, DatabaseUnavailable

    db = Database.from_settings(settings)
    try:
        if upgrade:
            await db.upgrade()
        bot = ColorBot(settings, store=db)
    except DatabaseUnavailable as exc:
        log.error("database not ready: %s", exc)
        await db.close()
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        except NotImplementedError:  # Windows
            pass
    try:
        async with bot:
            await bot.start(settings.discord_token)
    except discord.LoginFailure:
        log.error("Discord refused the token in DISCORD_TOKEN; reset it in the developer "
                  "portal (Bot tab) and update your .env")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("turn on the Message Content Intent: developer portal > your app > Bot > "
                  "Privileged Gateway Intents")
        return 1
    finally:
        await db.close()
    return 0

"""`colorbot web`: serve the public, read-only web page."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "web", help="serve the public web page: family, leaderboard, gallery (read-only)",
        description="Serve the family's cards, the leaderboard and the gallery of servers "
        "that turned it on with /gallery enable. Reads the bot's database (DATABASE_URL or "
        "the SQLite file in COLORBOT_DATA) and the family (COLORBOT_FAMILY); writes nothing.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s; 0.0.0.0 in a container)")
    p.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from colorbot.settings import Settings
    from web.app import create_app

    # `colorbot` has read .env already (as for every command).
    web.run_app(create_app(Settings.from_env()), host=args.host, port=args.port,
                print=lambda text: print(text.splitlines()[0] if text else text))
    return 0

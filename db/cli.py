"""`colorbot db ...` (schema) and `colorbot votes export` (the live votes as JSON lines)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    from colorbot.clihelp import DefaultsHelpFormatter as fmt

    db = subparsers.add_parser("db", help="database schema and storage: upgrade, ... check, gc",
                               formatter_class=fmt)
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    up = db_sub.add_parser("upgrade", help="migrate the database to the newest schema",
                           formatter_class=fmt)
    up.add_argument("revision", nargs="?", default="head",
                    help="target revision (default: head, the newest)")
    up.set_defaults(handler=_friendly(_upgrade))

    down = db_sub.add_parser("downgrade", help="migrate the database down (base: empty)",
                             formatter_class=fmt)
    down.add_argument("revision", help="target revision, e.g. -1 or base")
    down.set_defaults(handler=_friendly(_downgrade))

    cur = db_sub.add_parser("current", help="print the revision the database is at",
                            formatter_class=fmt)
    cur.set_defaults(handler=_friendly(_current))

    check = db_sub.add_parser(
        "check", formatter_class=fmt,
        help="compare the image store with the database: orphan files, stale temporary "
        "files, rows whose file is missing, pages without colorings")
    check.add_argument("--repair", action="store_true",
                       help="remove orphans, stale temporary files and pages without colorings")
    check.add_argument("--min-age", type=float, default=None, metavar="SECONDS",
                       help="leave files and pages younger than this alone (default: 600; "
                       "they may belong to a record being written)")
    check.set_defaults(handler=_friendly(_check))

    gc = db_sub.add_parser("gc", formatter_class=fmt,
                           help="delete orphan files and stale temporary files (dotfiles too)")
    gc.add_argument("--min-age", type=float, default=None, metavar="SECONDS",
                    help="leave files younger than this alone (default: 600)")
    gc.set_defaults(handler=_friendly(_gc))

    rev = db_sub.add_parser("revision", help="(developers) write a new migration",
                            formatter_class=fmt)
    rev.add_argument("-m", "--message", required=True,
                     help="what the migration does (its file name and docstring)")
    rev.add_argument(
        "--autogenerate",
        action="store_true",
        help="diff the models against a scratch database at head",
    )
    rev.set_defaults(handler=_revision)

    votes = subparsers.add_parser("votes", help="the votes people cast", formatter_class=fmt)
    votes_sub = votes.add_subparsers(dest="votes_command", metavar="ACTION", required=True)
    export = votes_sub.add_parser(
        "export",
        help="live votes as JSON lines (guild, channel, message, page hash, user, "
        "member, member version, time)",
        formatter_class=fmt,
    )
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.add_argument("--guild", type=int, help="only this guild's votes (default: all)")
    export.set_defaults(handler=_friendly(_export))


def _friendly(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A database that cannot be reached or is not migrated: one clear line, exit 1."""

    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import InterfaceError, OperationalError

        from db.errors import StorageError

        try:
            return handler(args)
        except (StorageError, OperationalError, InterfaceError, OSError) as exc:
            if getattr(args, "verbose", False):
                raise  # colorbot -v: the traceback
            print(f"colorbot: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}",
                  file=sys.stderr)
            return 1

    return run


def _url(args: argparse.Namespace) -> str:
    from colorbot.settings import Settings

    return Settings.from_env().resolved_database_url


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _upgrade(args: argparse.Namespace) -> int:
    from db import migrate

    url = _url(args)
    asyncio.run(migrate.upgrade(url, args.revision))
    current = asyncio.run(migrate.current_revision(url))
    print(f"database {_safe_url(url)} is at revision {current}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from db import migrate

    url = _url(args)
    asyncio.run(migrate.downgrade(url, args.revision))
    current = asyncio.run(migrate.current_revision(url))
    print(f"database {_safe_url(url)} is at revision {current or 'base (empty)'}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from db import migrate

    url = _url(args)
    current = asyncio.run(migrate.current_revision(url))
    head = migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `colorbot db upgrade`"
    print(f"{current or 'base (empty)'} ({state})")
    return 0 if current == head else 1


def _storage_report(args: argparse.Namespace, *, repair: bool, files_only: bool) -> Any:
    from colorbot.settings import Settings
    from db.check import DEFAULT_MIN_AGE_S, check_storage
    from db.repo import Database

    min_age = DEFAULT_MIN_AGE_S if args.min_age is None else max(0.0, args.min_age)

    async def run() -> Any:
        async with Database.from_settings(Settings.from_env()) as db:
            await db.check_schema()
            return await check_storage(db, repair=repair, min_age_s=min_age,
                                       files_only=files_only)

    return asyncio.run(run())


def _check(args: argparse.Namespace) -> int:
    report = _storage_report(args, repair=args.repair, files_only=False)
    for line in report.lines():
        print(line)
    if args.repair:
        print(f"removed {report.removed_files} file(s) and {report.removed_pages} page(s)")
        return 1 if report.unrepairable or report.missing_page_files else 0
    return 1 if report.problems else 0


def _gc(args: argparse.Namespace) -> int:
    report = _storage_report(args, repair=True, files_only=True)
    print(f"removed {report.removed_files} file(s): {len(report.orphans)} orphan(s), "
          f"{len(report.stale_parts)} stale temporary file(s)")
    return 0


def _revision(args: argparse.Namespace) -> int:
    from alembic import command

    from db import migrate

    head = migrate.head_revision()
    rev_id = f"{int(head) + 1:04d}" if head.isdigit() else None
    with tempfile.TemporaryDirectory() as tmp:
        scratch = f"sqlite+aiosqlite:///{Path(tmp) / 'scratch.sqlite3'}"
        asyncio.run(migrate.upgrade(scratch))

        async def write() -> None:
            def run(connection: Any) -> None:
                cfg = migrate.alembic_config()
                cfg.attributes["connection"] = connection
                command.revision(
                    cfg, message=args.message, autogenerate=args.autogenerate, rev_id=rev_id
                )

            from db.engine import create_engine

            engine = create_engine(scratch)
            async with engine.connect() as conn:
                await conn.run_sync(run)
            await engine.dispose()

        asyncio.run(write())
    return 0


def _export(args: argparse.Namespace) -> int:
    from colorbot.settings import Settings
    from db.repo import Database

    async def rows() -> list[dict[str, Any]]:
        async with Database.from_settings(Settings.from_env()) as db:
            await db.check_schema()
            return [row.to_json() for row in await db.export_votes(args.guild)]

    data = asyncio.run(rows())
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data)
    if args.out is None:
        sys.stdout.write(lines)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(lines, encoding="utf-8")
        tmp.replace(args.out)
        print(f"{len(data)} live votes written to {args.out}", file=sys.stderr)
    return 0

"""Running the Alembic migrations from code: `colorbot db upgrade`, the tests, start-up.

The configuration is built here, with `script_location` inside the installed
package, so it works from any working directory. Functions take an engine (reused,
e.g. with a test's search_path) or a URL.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from db.engine import MIGRATION, WRITE, create_engine

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for colorbot's migrations, independent of the working directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision in the package."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def _with_connection(
    target: AsyncEngine | str, fn: Callable[[Connection], T], migration: bool = True
) -> T:
    """Run `fn` on one connection in one transaction, committed at the end.

    A migration on SQLite gets a connection of its own (not pooled: it runs with
    foreign keys off, see db.engine.MIGRATION) and the keys are checked before commit.
    """
    own = isinstance(target, str)
    engine = create_engine(target) if isinstance(target, str) else target
    sqlite = engine.dialect.name == "sqlite"
    if migration and sqlite and not own:
        engine, own = create_engine(engine.url.render_as_string(False), poolclass=NullPool), True
    try:
        async with engine.connect() as connection:
            if migration:
                connection = await connection.execution_options(**{WRITE: True, MIGRATION: True})
                # Begun here, every revision runs in this one transaction. Left to itself,
                # Alembic commits after each revision on SQLite (no "transactional DDL"),
                # which lets a second process that waited for the lock run the next
                # revision too, then this one runs it again ("table ... already exists").
                await connection.begin()
            result = await connection.run_sync(fn)
            if migration and sqlite:
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    await connection.rollback()
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
            await connection.commit()
            return result
    finally:
        if own:
            await engine.dispose()


# Alembic's `context` is one module-level proxy: two migrations interleaving in one
# process (two Database objects upgrading at start-up) would trample each other.
# Across processes the database itself serializes them (env.py).
_process_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _process_locks.get(loop)
    if lock is None:
        lock = _process_locks[loop] = asyncio.Lock()
    return lock


def _command(name: str, revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        getattr(command, name)(cfg, revision)

    return run


async def upgrade(target: AsyncEngine | str, revision: str = "head") -> None:
    """Migrate the database at `target` (an engine or URL) up to `revision`."""
    async with _process_lock():
        await _with_connection(target, _command("upgrade", revision))


async def downgrade(target: AsyncEngine | str, revision: str) -> None:
    """Migrate the database at `target` down to `revision` ("base": empty)."""
    async with _process_lock():
        await _with_connection(target, _command("downgrade", revision))


async def current_revision(target: AsyncEngine | str) -> str | None:
    """The revision the database is at (None: never migrated)."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    return await _with_connection(target, read, migration=False)

"""The one engine factory, and the sessions made from it.

`create_engine(url)` returns an async engine for SQLite (aiosqlite) or PostgreSQL
(asyncpg). SQLite connections get WAL, foreign keys and a busy timeout, and
transactions that write start with `BEGIN IMMEDIATE` so concurrent writers queue
for the lock instead of failing half-way (see `WRITE`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

# Execution option marking a transaction that will write. On SQLite it makes the
# transaction begin with BEGIN IMMEDIATE (take the write lock up front, waiting up to
# the busy timeout): a deferred transaction that read first cannot wait for the lock
# later and fails with "database is locked". PostgreSQL ignores it.
WRITE = "colorbot_write"

# Execution option marking a migration's transaction. On SQLite it turns foreign keys
# off first (only possible outside a transaction): batch migrations rebuild a table
# by copying and dropping it, and with foreign keys on, dropping a parent table would
# cascade-delete its children's rows (votes!). db/migrate.py checks the keys after.
MIGRATION = "colorbot_migration"

# How long a SQLite connection waits for another writer, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalize_url(url: str) -> str:
    """An async SQLAlchemy URL for `url`.

    Plain `postgresql://` / `postgres://` become `postgresql+asyncpg://` and plain
    `sqlite://` becomes `sqlite+aiosqlite://`, so the usual DATABASE_URL works as is.
    """
    url = url.strip()
    if not url:
        raise ValueError("empty database URL")
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


def is_sqlite(url_or_engine: str | AsyncEngine) -> bool:
    if isinstance(url_or_engine, AsyncEngine):
        return url_or_engine.dialect.name == "sqlite"
    return make_url(normalize_url(url_or_engine)).get_backend_name() == "sqlite"


def create_engine(
    url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> AsyncEngine:
    """The async engine for `url` (see `normalize_url`); `kwargs` go to SQLAlchemy.

    SQLite: the file's folder is created, and every connection runs in WAL mode with
    foreign keys on and waits up to `busy_timeout_ms` for another writer. PostgreSQL:
    asyncpg, with connections checked before use (`pool_pre_ping`) so a restarted
    server costs no request.
    """
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            from pathlib import Path

            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **kwargs)
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "asyncpg":
        raise ValueError(
            f"PostgreSQL needs the asyncpg driver (postgresql+asyncpg://), got {parsed.drivername}"
        )
    kwargs.setdefault("pool_pre_ping", True)
    return _create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver's own implicit BEGIN is too late
        # and always DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL takes a lock, and with another
        # process migrating at that moment the switch would fail at once without it.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(MIGRATION, False):
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        immediate = options.get(WRITE, False) or options.get(MIGRATION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay usable after commit (nothing lazy-loads later)."""
    return async_sessionmaker(engine, expire_on_commit=False)

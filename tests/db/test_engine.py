"""The engine factory: URLs, SQLite connection settings, and database hiccups."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from db import Database, DatabaseUnavailable
from db.engine import create_engine, normalize_url
from db.repo import Database as _Database


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalize_url(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_sync_postgres_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="asyncpg"):
        create_engine("postgresql+psycopg2://u@h/d")


async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite3'}", busy_timeout_ms=1234)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar()
        assert (mode, fks, busy) == ("wal", 1, 1234)
    finally:
        await engine.dispose()


def test_settings_url_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    from colorbot.settings import Settings

    db = Database.from_settings(Settings(data_dir=tmp_path))
    assert db.url == f"sqlite+aiosqlite:///{(tmp_path / 'colorbot.sqlite3').resolve()}"
    assert db.store is not None and db.store.root == tmp_path.resolve() / "store"


async def test_a_locked_sqlite_database_becomes_database_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    db = _Database(f"sqlite:///{path}", attempts=2, busy_timeout_ms=50)
    await db.upgrade()
    other = sqlite3.connect(path, isolation_level=None)  # another process holding the lock
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            await db.ensure_guild(1)
        assert "locked" in str(caught.value)
        assert db.retries == 1
        assert caught.value.user_message  # what the bot shows
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await db.ensure_guild(1)).id == 1  # and it recovers
    await db.close()


async def test_an_unreachable_postgres_becomes_database_unavailable() -> None:
    # Port 9 (discard) on localhost: nothing listens, the connection is refused.
    db = Database("postgresql://postgres@127.0.0.1:9/test", attempts=2)
    try:
        with pytest.raises(DatabaseUnavailable):
            await db.cast_vote(1, "😀", 2)
        with pytest.raises(DatabaseUnavailable):
            await db.upgrade()
    finally:
        await db.close()


@pytest.mark.postgres
@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre-ping", "retry"])
async def test_connections_cut_by_the_server_are_replaced(pg_backend, pre_ping: bool) -> None:
    # A database restart (or a failover) kills every pooled connection; the next
    # call must still work: the pool's pre-ping replaces stale connections, and
    # without it the transaction is retried on a fresh one.
    db = pg_backend.database(pool_pre_ping=pre_ping)
    await db.upgrade()
    try:
        for n in range(3):  # a few pooled connections
            await db.ensure_guild(n)
        server_settings = pg_backend.engine_kwargs["connect_args"]["server_settings"]
        admin = pg_backend.engine(poolclass=NullPool)
        try:
            async with admin.begin() as conn:
                cut = await conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :app AND pid <> pg_backend_pid()"
                    ),
                    {"app": server_settings["application_name"]},
                )
                assert len(cut.all()) >= 1
        finally:
            await admin.dispose()
        assert (await db.ensure_guild(1, "after the cut")).name == "after the cut"
        assert db.retries == (0 if pre_ping else 1)
    finally:
        await db.close()

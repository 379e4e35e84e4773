"""Fixtures: every data-layer test runs against SQLite and against PostgreSQL.

SQLite: a fresh file under tmp_path. PostgreSQL: a fresh, randomly named schema in
the server's `test` database (DATABASE_URL_TEST overrides the URL), selected with
search_path and dropped afterwards; the schema always comes from the migrations.

When the server cannot be reached the PostgreSQL variants are SKIPPED with a
one-line reason (the first failed connection is remembered, so the rest skip at
once). COLORBOT_SKIP_POSTGRES=1 skips them without trying; COLORBOT_REQUIRE_POSTGRES=1
makes an unreachable server a failure instead (for a CI that has one).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from db.engine import create_engine, normalize_url
from db.repo import Database

PG_URL = normalize_url(
    os.environ.get("DATABASE_URL_TEST", "postgresql://postgres@127.0.0.1:5432/test")
)
SKIP_POSTGRES = os.environ.get("COLORBOT_SKIP_POSTGRES", "") not in ("", "0")
REQUIRE_POSTGRES = os.environ.get("COLORBOT_REQUIRE_POSTGRES", "") not in ("", "0")
# Why the server could not be reached, once a test has tried (then the rest skip at once).
_pg_unreachable: list[str] = []


@dataclass
class Backend:
    """Where one test's database lives and how to make engines for it."""

    name: str  # "sqlite" | "postgresql"
    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)

    def database(self, store_dir: Path | None = None, **kwargs: Any) -> Database:
        return Database(self.url, store_dir=store_dir, **{**self.engine_kwargs, **kwargs})

    def engine(self, **kwargs: Any) -> Any:
        return create_engine(self.url, **{**self.engine_kwargs, **kwargs})


async def _postgres_schema() -> tuple[str, Any]:
    if _pg_unreachable:
        pytest.skip(_pg_unreachable[0])
    admin = create_engine(
        PG_URL,
        poolclass=NullPool,
        connect_args={"server_settings": {"synchronous_commit": "off"}},
    )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        await admin.dispose()
        reason = (
            f"PostgreSQL at {PG_URL} unreachable ({type(exc).__name__}); "
            "start it or set DATABASE_URL_TEST"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (COLORBOT_REQUIRE_POSTGRES is set)", pytrace=False)
        _pg_unreachable.append(reason)
        pytest.skip(reason)
    return schema, admin


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'colorbot.sqlite3'}")
        return
    async with _postgres_backend() as pg:
        yield pg


@pytest.fixture
async def pg_backend() -> AsyncIterator[Backend]:
    """An empty PostgreSQL schema, for what only a server can show."""
    async with _postgres_backend() as pg:
        yield pg


@contextlib.asynccontextmanager
async def _postgres_backend() -> AsyncIterator[Backend]:
    if SKIP_POSTGRES:
        pytest.skip("COLORBOT_SKIP_POSTGRES is set")
    schema, admin = await _postgres_schema()
    try:
        yield Backend(
            "postgresql",
            PG_URL,
            # No waiting for the WAL flush on commit: a throw-away schema needs no
            # durability, and it keeps the suite quick on a busy machine.
            {
                "connect_args": {
                    "server_settings": {
                        "search_path": schema,
                        "synchronous_commit": "off",
                        # Lets a test find (and cut) exactly its own connections.
                        "application_name": f"colorbot-test-{schema}",
                    }
                }
            },
        )
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def db(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database with an image store under tmp_path."""
    database = backend.database(store_dir=tmp_path / "store")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.close()

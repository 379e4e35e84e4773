"""Alembic environment: async-aware, batch mode on SQLite, one upgrader at a time.

`db/migrate.py` hands in a live connection (`config.attributes["connection"]`), which
is how `colorbot db upgrade` and the tests run it, from any working directory and
from inside a running event loop. Run by the `alembic` command instead, it makes its
own engine from the URL in the config or from the environment.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import db.models  # noqa: F401  (registers every table on Base.metadata)
from db.base import Base

config = context.config
target_metadata = Base.metadata

# pg_advisory_xact_lock key: two processes starting at once (bot and trainer) must not
# both run the same migration.
_MIGRATION_LOCK_KEY = 0x636F6C6F72  # "color"


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from colorbot.settings import Settings

    return Settings.from_env().resolved_database_url


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        context.run_migrations()


async def run_async_migrations() -> None:
    from db.migrate import _with_connection

    await _with_connection(_database_url(), do_run_migrations)


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""What every part of `Database` stands on: the engine, the image store, the schema,
and the one retried transaction each operation runs in.

The domain modules (db/channels.py, pages.py, votes.py, forget.py, versions.py,
runs.py) each add one noun's queries as a subclass of `DatabaseCore`; db/repo.py puts
them together as `Database`. A new domain module does the same: subclass
`DatabaseCore`, write each operation as `await self.run(tx)`, and add the class to
`Database`'s bases (or write functions of `db: Database`, like db/web_queries.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from sqlalchemy import CursorResult, Delete, Update, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from db import migrate
from db.base import Base
from db.engine import WRITE, create_engine, create_sessionmaker, normalize_url
from db.errors import Conflict, DatabaseUnavailable
from db.store import ImageStore, sha256_hex

if TYPE_CHECKING:
    from colorbot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, and the
# "server is going away / not ready yet" family.
_RETRY_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
# SQLite messages that mean "busy, try again" rather than "your SQL is wrong".
_RETRY_SQLITE = ("database is locked", "database table is locked", "disk i/o error", "busy")


def _is_transient(exc: BaseException) -> bool:
    """A failure that another attempt in a moment may not meet."""
    if isinstance(exc, PoolTimeoutError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if sqlstate in _RETRY_SQLSTATES:
            return True
        if isinstance(exc, OperationalError):
            text = str(orig).lower()
            if any(marker in text for marker in _RETRY_SQLITE):
                return True
            # asyncpg connection loss surfaces as OperationalError-wrapped errors too.
            if "connection" in text and ("closed" in text or "lost" in text or "refused" in text):
                return True
    return False


Insert = postgresql.Insert | sqlite.Insert


def dialect_name(session: AsyncSession) -> str:
    """The session's database: "sqlite" or "postgresql"."""
    return session.get_bind().dialect.name


def dialect_insert(session: AsyncSession, model: type[Base]) -> Insert:
    """The session's dialect's INSERT (both offer on_conflict_do_nothing / _do_update)."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def changed_rows(session: AsyncSession, statement: Update | Delete) -> int:
    """Run an UPDATE or DELETE; how many rows it changed."""
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount or 0


async def advisory_lock(s: AsyncSession, namespace: int, key: str) -> None:
    """Serialize transactions that name the same (namespace, key) on PostgreSQL, until
    the transaction ends; SQLite already runs one writer at a time (BEGIN IMMEDIATE)."""
    if dialect_name(s) != "postgresql":
        return
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    await s.execute(
        select(func.pg_advisory_xact_lock(namespace, int.from_bytes(digest, "big", signed=True)))
    )


class DatabaseCore:
    """The engine, the session factory, the image store and the transaction runner.

    Also an async context manager (`async with Database(url) as db:`).
    """

    def __init__(
        self,
        url: str,
        *,
        store_dir: str | Path | None = None,
        attempts: int = 4,
        **engine_kwargs: Any,
    ) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine(self.url, **engine_kwargs)
        self.sessions = create_sessionmaker(self.engine)
        self.store: ImageStore | None = ImageStore(store_dir) if store_dir else None
        self.attempts = max(1, attempts)
        # SQLite has one writer at a time. Queueing this process's writers here is far
        # cheaper than SQLite's busy handler, which sleep-polls for the lock (other
        # processes still wait through the busy timeout).
        self._sqlite_writer = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None
        # How many transactions had to be retried (the tests read it).
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs: Any) -> Self:
        """The database and image store the settings name (DATABASE_URL, COLORBOT_DATA)."""
        return cls(
            settings.resolved_database_url,
            store_dir=Path(settings.data_dir).expanduser().resolve() / "store",
            **engine_kwargs,
        )

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- schema

    async def upgrade(self, revision: str = "head") -> None:
        """Run the Alembic migrations up to `revision` (a no-op when already there)."""
        await self._guard(migrate.upgrade(self.engine, revision))

    async def schema_revision(self) -> str | None:
        """The migration the database is at; None when it was never migrated."""
        return await self._guard(migrate.current_revision(self.engine))

    async def check_schema(self) -> None:
        """Raise DatabaseUnavailable when the schema is not at the newest migration."""
        current = await self.schema_revision()
        head = migrate.head_revision()
        if current != head:
            raise DatabaseUnavailable(
                f"database schema is at {current or 'nothing'}, code needs {head}: "
                "run `colorbot db upgrade`"
            )

    # ------------------------------------------------------------ transactions

    async def _guard(self, coro: Awaitable[T]) -> T:
        try:
            return await coro
        except (OperationalError, InterfaceError, OSError, PoolTimeoutError) as exc:
            raise DatabaseUnavailable(f"database unavailable: {exc}") from exc

    async def run(
        self,
        fn: Callable[[AsyncSession], Awaitable[T]],
        *,
        write: bool = True,
        retry_conflicts: bool = False,
    ) -> T:
        """Run `fn(session)` in one transaction, committed when it returns.

        Transient failures (connection lost, SQLite busy, PostgreSQL serialization
        failure or deadlock) are retried with jittered back-off; with
        `retry_conflicts`, so are IntegrityErrors (a concurrent writer won a race and
        the next attempt sees its row). Gives up with DatabaseUnavailable (or Conflict).
        """
        delay = 0.02
        for attempt in range(1, self.attempts + 1):
            try:
                if write and self._sqlite_writer is not None:
                    async with self._sqlite_writer:
                        return await self._transaction(fn, write)
                return await self._transaction(fn, write)
            except IntegrityError as exc:
                if not retry_conflicts or attempt == self.attempts:
                    raise Conflict(str(exc.orig)) from exc
                log.debug("conflict, retrying (attempt %d): %s", attempt, exc.orig)
            except (DBAPIError, OSError, TimeoutError, PoolTimeoutError) as exc:
                transient = _is_transient(exc)
                if not isinstance(exc, OperationalError | InterfaceError) and not transient:
                    raise  # a bug (bad SQL, wrong type): let it show
                if not transient or attempt == self.attempts:
                    raise DatabaseUnavailable(f"database unavailable: {exc}") from exc
                log.warning("database hiccup, retrying (attempt %d): %s", attempt, exc)
            self.retries += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 3, 1.0)
        raise AssertionError("unreachable")

    async def _transaction(self, fn: Callable[[AsyncSession], Awaitable[T]], write: bool) -> T:
        async with self.sessions() as session, session.begin():
            if write:
                await session.connection(execution_options={WRITE: True})
            return await fn(session)

    async def read_image(self, sha: str) -> bytes:
        """The stored image `sha` (read in a thread); FileNotFoundError when it is not
        stored, or when this database has no image store."""
        if self.store is None:
            raise FileNotFoundError(f"no image store for {sha}")
        return await asyncio.to_thread(self.store.get, sha)

    async def _store_put(self, data: bytes) -> str:
        """Store `data` (before the record naming it commits); its sha256."""
        if self.store is None:
            return sha256_hex(data)
        return await asyncio.to_thread(self.store.put, data)


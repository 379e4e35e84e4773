"""The repository: every read and write the bot and the trainer make, as methods.

`Database` owns the engine, the session factory and the image store. Each method is
one short transaction of its own, retried on transient failures (and, where a
concurrent writer can win a race, on constraint conflicts); what cannot be done
raises `DatabaseUnavailable`, `NotFound` or `Conflict` (db/errors.py). See the
package docstring (db/__init__.py) for the whole API.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from db import migrate
from db.engine import WRITE, create_engine, create_sessionmaker, normalize_url
from db.errors import Conflict, DatabaseUnavailable, NotFound
from db.models import (
    Coloring,
    Guild,
    GuildChannel,
    Job,
    MemberVersion,
    Page,
    TrainingRun,
    Vote,
)
from db.results import (
    ColoringRef,
    ForgetResult,
    MemberVotes,
    NewColoring,
    RecordedPage,
    ReplyTarget,
    VotedPage,
    VoteExportRow,
    VoteResult,
)
from db.store import ImageStore, sha256_hex
from db.types import utcnow

if TYPE_CHECKING:
    from colorbot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# First key of the two-int advisory locks that serialize one (user, page) vote.
_VOTE_LOCK_NAMESPACE = 0x766F7465  # "vote"

# PostgreSQL SQLSTATEs worth retrying: serialization failure, deadlock, and the
# "server is going away / not ready yet" family.
_RETRY_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006"}
# SQLite messages that mean "busy, try again" rather than "your SQL is wrong".
_RETRY_SQLITE = ("database is locked", "database table is locked", "disk i/o error", "busy")


def normalize_emoji(emoji: str) -> str:
    """Drop variation selector-16, which some clients add to the same emoji."""
    return emoji.replace("\ufe0f", "").strip()


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


_UNSET: Any = object()


class Database:
    """colorbot's storage: `await db.cast_vote(...)`, `await db.record_page(...)` ...

    db = Database.from_settings(settings)      # or Database(url, store_dir=...)
    await db.upgrade()                         # migrate to head (idempotent)
    ...
    await db.close()

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
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # SQLite has one writer at a time. Queueing this process's writers here is far
        # cheaper than SQLite's busy handler, which sleep-polls for the lock (other
        # processes still wait through the busy timeout).
        self._sqlite_writer = asyncio.Lock() if self.engine.dialect.name == "sqlite" else None
        # How many transactions had to be retried (tests and /metrics read it).
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: Settings, **engine_kwargs: Any) -> Database:
        """The database and image store the settings name (DATABASE_URL, COLORBOT_DATA)."""
        return cls(
            settings.resolved_database_url,
            store_dir=Path(settings.data_dir).expanduser().resolve() / "store",
            **engine_kwargs,
        )

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
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

    async def ping(self) -> bool:
        """True when the database answers (for health checks); never raises."""

        async def tx(s: AsyncSession) -> bool:
            return (await s.execute(select(1))).scalar() == 1

        try:
            return await self.run(tx, write=False)
        except Exception:  # noqa: BLE001 - a health check reports, it does not fail
            return False

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

    def _insert(self, session: AsyncSession, model: type) -> Any:
        """The dialect's INSERT (both offer on_conflict_do_nothing)."""
        if session.bind.dialect.name == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    async def _store_put(self, data: bytes) -> str:
        if self.store is None:
            return sha256_hex(data)
        return await asyncio.to_thread(self.store.put, data)

    # ------------------------------------------------------ guilds and channels

    async def _ensure_guild(self, s: AsyncSession, guild_id: int, name: str | None) -> None:
        values: dict[str, Any] = {"id": guild_id, "name": name or "", "settings": {}}
        values.update(default_strength=1.0, created_at=utcnow(), updated_at=utcnow())
        await s.execute(self._insert(s, Guild).values(**values).on_conflict_do_nothing())
        if name is not None:
            await s.execute(
                update(Guild)
                .where(Guild.id == guild_id, Guild.name != name)
                .values(name=name, updated_at=utcnow())
            )

    async def ensure_guild(self, guild_id: int, name: str | None = None) -> Guild:
        """The guild's record, created with default settings on first sight."""

        async def tx(s: AsyncSession) -> Guild:
            await self._ensure_guild(s, guild_id, name)
            return (await s.execute(select(Guild).where(Guild.id == guild_id))).scalar_one()

        return await self.run(tx)

    async def update_guild_settings(
        self,
        guild_id: int,
        *,
        default_strength: float = _UNSET,
        default_fill: bool | None = _UNSET,
        default_members: list[str] | None = _UNSET,
        settings: dict[str, Any] = _UNSET,
    ) -> Guild:
        """Change the given defaults (others stay); `settings` is merged key by key."""

        async def tx(s: AsyncSession) -> Guild:
            await self._ensure_guild(s, guild_id, None)
            guild = (
                await s.execute(select(Guild).where(Guild.id == guild_id).with_for_update())
            ).scalar_one()
            if default_strength is not _UNSET:
                guild.default_strength = float(default_strength)
            if default_fill is not _UNSET:
                guild.default_fill = default_fill
            if default_members is not _UNSET:
                guild.default_members = list(default_members) if default_members else None
            if settings is not _UNSET:
                guild.settings = {**(guild.settings or {}), **settings}
            guild.updated_at = utcnow()
            return guild

        return await self.run(tx, retry_conflicts=True)

    async def set_channel_enabled(
        self, guild_id: int, channel_id: int, enabled: bool, *, changed_by: int | None = None
    ) -> None:
        """`/channel enable|disable`: an explicit choice, which wins over default names."""

        async def tx(s: AsyncSession) -> None:
            await self._ensure_guild(s, guild_id, None)
            stmt = self._insert(s, GuildChannel).values(
                channel_id=channel_id,
                guild_id=guild_id,
                enabled=enabled,
                changed_by=changed_by,
                updated_at=utcnow(),
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[GuildChannel.channel_id],
                set_={
                    "guild_id": guild_id,
                    "enabled": enabled,
                    "changed_by": changed_by,
                    "updated_at": utcnow(),
                },
            )
            await s.execute(stmt)

        await self.run(tx, retry_conflicts=True)

    async def enable_channel(self, guild_id: int, channel_id: int, **kw: Any) -> None:
        await self.set_channel_enabled(guild_id, channel_id, True, **kw)

    async def disable_channel(self, guild_id: int, channel_id: int, **kw: Any) -> None:
        await self.set_channel_enabled(guild_id, channel_id, False, **kw)

    async def is_channel_enabled(
        self,
        guild_id: int | None,
        channel_id: int,
        channel_name: str | None = None,
        default_channels: Iterable[str] = (),
    ) -> bool:
        """Whether pages posted in this channel are colored.

        An explicit `/channel enable|disable` decides; otherwise the channel is enabled
        when its name is one of `default_channels` (Settings.default_channels).
        """

        async def tx(s: AsyncSession) -> bool | None:
            return (
                await s.execute(
                    select(GuildChannel.enabled).where(GuildChannel.channel_id == channel_id)
                )
            ).scalar_one_or_none()

        explicit = await self.run(tx, write=False)
        if explicit is not None:
            return bool(explicit)
        names = {n.lower().lstrip("#") for n in default_channels}
        return channel_name is not None and channel_name.lower() in names

    async def enabled_channels(self, guild_id: int) -> list[int]:
        """Channels explicitly enabled in the guild (default-named ones not included)."""

        async def tx(s: AsyncSession) -> list[int]:
            rows = await s.execute(
                select(GuildChannel.channel_id)
                .where(GuildChannel.guild_id == guild_id, GuildChannel.enabled.is_(True))
                .order_by(GuildChannel.channel_id)
            )
            return list(rows.scalars())

        return await self.run(tx, write=False)

    # ------------------------------------------------------- pages and colorings

    async def record_page(
        self,
        image: bytes,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        message_id: int | None = None,
        author_id: int | None = None,
        source: str = "discord",
        filename: str | None = None,
        kind: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> RecordedPage:
        """Store the image and record the page; the same image in the same message is
        recorded once (`created` False the second time: e.g. an event replayed after
        a reconnect). `message_id` None (CLI, slash command) never deduplicates."""
        sha = await self._store_put(image)

        async def tx(s: AsyncSession) -> RecordedPage:
            if guild_id is not None:
                await self._ensure_guild(s, guild_id, None)
            if message_id is not None:
                existing = (
                    await s.execute(
                        select(Page).where(Page.message_id == message_id, Page.sha256 == sha)
                    )
                ).scalar_one_or_none()
                if existing is not None:
                    return RecordedPage(existing, created=False)
            page = Page(
                sha256=sha,
                guild_id=guild_id,
                channel_id=channel_id,
                message_id=message_id,
                author_id=author_id,
                source=source,
                filename=filename[:255] if filename else None,
                kind=kind,
                width=width,
                height=height,
                size_bytes=len(image),
            )
            s.add(page)
            await s.flush()
            return RecordedPage(page, created=True)

        return await self.run(tx, retry_conflicts=True)

    async def set_page_info(
        self,
        page_id: int,
        *,
        kind: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        """Fill in what the worker found out (kind, size) after recording."""
        values = {
            k: v for k, v in (("kind", kind), ("width", width), ("height", height)) if v is not None
        }
        if not values:
            return

        async def tx(s: AsyncSession) -> None:
            result = await s.execute(update(Page).where(Page.id == page_id).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"no page {page_id}")

        await self.run(tx)

    async def get_page(self, page_id: int) -> Page:
        async def tx(s: AsyncSession) -> Page:
            page = await s.get(Page, page_id)
            if page is None:
                raise NotFound(f"no page {page_id}")
            return page

        return await self.run(tx, write=False)

    async def pages(self, guild_id: int | None = None) -> list[Page]:
        """All pages (of one guild), oldest first."""

        async def tx(s: AsyncSession) -> list[Page]:
            stmt = select(Page).order_by(Page.id)
            if guild_id is not None:
                stmt = stmt.where(Page.guild_id == guild_id)
            return list((await s.execute(stmt)).scalars())

        return await self.run(tx, write=False)

    async def _ensure_member_version(
        self, s: AsyncSession, member: str, version: int, weights_sha256: str | None
    ) -> MemberVersion:
        mv = (
            await s.execute(
                select(MemberVersion).where(
                    MemberVersion.member == member, MemberVersion.version == version
                )
            )
        ).scalar_one_or_none()
        if mv is not None:
            if weights_sha256 and not mv.weights_sha256:
                mv.weights_sha256 = weights_sha256
            return mv
        has_promoted = (
            await s.execute(
                select(MemberVersion.id).where(
                    MemberVersion.member == member, MemberVersion.promoted.is_(True)
                )
            )
        ).first() is not None
        mv = MemberVersion(
            member=member,
            version=version,
            weights_sha256=weights_sha256,
            promoted=not has_promoted,
            reason="" if has_promoted else "first version seen in service",
            decided_at=None if has_promoted else utcnow(),
        )
        s.add(mv)
        await s.flush()
        return mv

    async def ensure_member_version(
        self, member: str, version: int, *, weights_sha256: str | None = None
    ) -> MemberVersion:
        """The (member, version) record, created on first sight. A member's first
        recorded version is promoted: it is what the family serves."""

        async def tx(s: AsyncSession) -> MemberVersion:
            return await self._ensure_member_version(s, member, version, weights_sha256)

        return await self.run(tx, retry_conflicts=True)

    async def record_colorings(
        self,
        page_id: int,
        colorings: Sequence[NewColoring],
        *,
        message_id: int | None = None,
    ) -> list[Coloring]:
        """Store each coloring's PNG and record it (member versions created on first
        sight). Give `message_id` when the reply is already sent, or link it later
        with `link_reply`."""
        shas = [await self._store_put(c.image) for c in colorings]

        async def tx(s: AsyncSession) -> list[Coloring]:
            if await s.get(Page, page_id) is None:
                raise NotFound(f"no page {page_id}")
            rows = []
            for new, sha in zip(colorings, shas, strict=True):
                mv = await self._ensure_member_version(
                    s, new.member, new.version, new.weights_sha256
                )
                row = Coloring(
                    page_id=page_id,
                    member_version_id=mv.id,
                    emoji=normalize_emoji(new.emoji),
                    parameters=dict(new.parameters),
                    sha256=sha,
                    message_id=message_id,
                    duration_ms=new.duration_ms,
                    timings=new.timings,
                )
                s.add(row)
                rows.append(row)
            await s.flush()
            return rows

        return await self.run(tx, retry_conflicts=True)

    async def link_reply(self, message_id: int, coloring_ids: Iterable[int]) -> None:
        """Mark `message_id` (the bot's reply) as the message that shows these
        colorings: reactions on it vote for them, also after a restart."""
        ids = list(coloring_ids)

        async def tx(s: AsyncSession) -> None:
            result = await s.execute(
                update(Coloring).where(Coloring.id.in_(ids)).values(message_id=message_id)
            )
            if result.rowcount != len(set(ids)):
                raise NotFound(f"some of the colorings {ids} do not exist")

        await self.run(tx)

    async def reply_target(self, message_id: int) -> ReplyTarget | None:
        """The page and colorings a reply message shows; None if it is not one of ours."""

        async def tx(s: AsyncSession) -> ReplyTarget | None:
            rows = (
                await s.execute(
                    select(Coloring, MemberVersion.member)
                    .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
                    .where(Coloring.message_id == message_id)
                    .order_by(Coloring.id)
                )
            ).all()
            if not rows:
                return None
            page = await s.get(Page, rows[0][0].page_id)
            assert page is not None
            return ReplyTarget(
                message_id=message_id,
                page=page,
                colorings={c.emoji: c for c, _ in rows},
                members={c.emoji: m for c, m in rows},
            )

        return await self.run(tx, write=False)

    async def page_colorings(self, page_id: int) -> list[ColoringRef]:
        async def tx(s: AsyncSession) -> list[ColoringRef]:
            rows = await s.execute(
                _coloring_ref_query().where(Coloring.page_id == page_id).order_by(Coloring.id)
            )
            return [_coloring_ref(r) for r in rows]

        return await self.run(tx, write=False)

    # ------------------------------------------------------------------ votes

    async def _lock_user_page(self, s: AsyncSession, user_id: int, page_id: int) -> None:
        """Serialize vote changes of one (user, page) on PostgreSQL (SQLite already
        serializes writers with BEGIN IMMEDIATE). Held until the transaction ends."""
        if s.bind.dialect.name != "postgresql":
            return
        digest = hashlib.blake2b(f"{user_id}:{page_id}".encode(), digest_size=4).digest()
        key = int.from_bytes(digest, "big", signed=True)
        await s.execute(select(func.pg_advisory_xact_lock(_VOTE_LOCK_NAMESPACE, key)))

    async def cast_vote(
        self,
        message_id: int,
        emoji: str,
        user_id: int,
        *,
        source: str = "discord",
        at: datetime | None = None,
    ) -> VoteResult:
        """A reaction was added: make it the user's one live vote on that page.

        A live vote for another coloring of the page is moved (removed, and the new
        one added) in the same transaction; safe under any concurrency: the database
        holds at most one live vote per (user, page), and concurrent changes by one
        user are serialized. Unknown (message, emoji) pairs are "ignored".
        """
        emoji = normalize_emoji(emoji)

        async def tx(s: AsyncSession) -> VoteResult:
            target = (
                await s.execute(
                    select(Coloring.id, Coloring.page_id, MemberVersion.member)
                    .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
                    .where(Coloring.message_id == message_id, Coloring.emoji == emoji)
                )
            ).first()
            if target is None:
                return VoteResult("ignored")
            coloring_id, page_id, member = target
            await self._lock_user_page(s, user_id, page_id)
            current = (
                await s.execute(
                    select(Vote).where(
                        Vote.user_id == user_id,
                        Vote.page_id == page_id,
                        Vote.removed_at.is_(None),
                    )
                )
            ).scalar_one_or_none()
            if current is not None and current.coloring_id == coloring_id:
                return VoteResult("unchanged", page_id, coloring_id, member, current.id)
            now = at or utcnow()
            previous_emoji = None
            if current is not None:
                current.removed_at = now
                # Out of the live index before the new vote goes in.
                await s.flush()
                previous_emoji = await s.scalar(
                    select(Coloring.emoji).where(Coloring.id == current.coloring_id)
                )
            vote = Vote(
                user_id=user_id,
                page_id=page_id,
                coloring_id=coloring_id,
                source=source,
                added_at=now,
            )
            s.add(vote)
            await s.flush()
            return VoteResult(
                "moved" if current is not None else "added",
                page_id,
                coloring_id,
                member,
                vote.id,
                previous_coloring_id=current.coloring_id if current is not None else None,
                previous_emoji=previous_emoji,
            )

        # Without the advisory lock (or on a constraint race we did not foresee) the
        # partial unique index refuses a second live vote; the retry then moves it.
        return await self.run(tx, retry_conflicts=True)

    async def remove_vote(
        self, message_id: int, emoji: str, user_id: int, *, at: datetime | None = None
    ) -> bool:
        """A reaction was removed: end the user's live vote if it is for that coloring.

        Returns True when a live vote ended. A reaction removed after the vote moved
        elsewhere (the bot removing the old reaction, say) changes nothing.
        """
        emoji = normalize_emoji(emoji)

        async def tx(s: AsyncSession) -> bool:
            target = (
                await s.execute(
                    select(Coloring.id, Coloring.page_id).where(
                        Coloring.message_id == message_id, Coloring.emoji == emoji
                    )
                )
            ).first()
            if target is None:
                return False
            coloring_id, page_id = target
            await self._lock_user_page(s, user_id, page_id)
            result = await s.execute(
                update(Vote)
                .where(
                    Vote.user_id == user_id,
                    Vote.page_id == page_id,
                    Vote.coloring_id == coloring_id,
                    Vote.removed_at.is_(None),
                )
                .values(removed_at=at or utcnow())
            )
            return result.rowcount > 0

        return await self.run(tx)

    async def live_votes(
        self,
        guild_id: int | None = None,
        *,
        page_id: int | None = None,
        user_id: int | None = None,
    ) -> list[Vote]:
        """Live votes, oldest first, optionally for one guild, page or user."""

        async def tx(s: AsyncSession) -> list[Vote]:
            stmt = select(Vote).where(Vote.removed_at.is_(None)).order_by(Vote.id)
            if guild_id is not None:
                stmt = stmt.join(Page, Page.id == Vote.page_id).where(Page.guild_id == guild_id)
            if page_id is not None:
                stmt = stmt.where(Vote.page_id == page_id)
            if user_id is not None:
                stmt = stmt.where(Vote.user_id == user_id)
            return list((await s.execute(stmt)).scalars())

        return await self.run(tx, write=False)

    async def vote_history(self, page_id: int, user_id: int | None = None) -> list[Vote]:
        """Every vote on a page, removed ones included, in the order they were cast."""

        async def tx(s: AsyncSession) -> list[Vote]:
            stmt = select(Vote).where(Vote.page_id == page_id).order_by(Vote.id)
            if user_id is not None:
                stmt = stmt.where(Vote.user_id == user_id)
            return list((await s.execute(stmt)).scalars())

        return await self.run(tx, write=False)

    async def export_votes(self, guild_id: int | None = None) -> list[VoteExportRow]:
        """The live votes with where they were cast and for which member version."""

        async def tx(s: AsyncSession) -> list[VoteExportRow]:
            stmt = (
                select(
                    Page.guild_id,
                    Page.channel_id,
                    Coloring.message_id,
                    Page.id,
                    Page.sha256,
                    Page.message_id,
                    Vote.user_id,
                    MemberVersion.member,
                    MemberVersion.version,
                    Coloring.emoji,
                    Coloring.id,
                    Vote.added_at,
                )
                .select_from(Vote)
                .join(Page, Page.id == Vote.page_id)
                .join(Coloring, Coloring.id == Vote.coloring_id)
                .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
                .where(Vote.removed_at.is_(None))
                .order_by(Vote.added_at, Vote.id)
            )
            if guild_id is not None:
                stmt = stmt.where(Page.guild_id == guild_id)
            return [VoteExportRow(*row) for row in await s.execute(stmt)]

        return await self.run(tx, write=False)

    async def vote_counts(self, guild_id: int | None = None) -> list[MemberVotes]:
        """Live votes and votable colorings per member, most votes first."""

        async def tx(s: AsyncSession) -> list[MemberVotes]:
            votes_q = (
                select(MemberVersion.member, func.count(Vote.id))
                .select_from(Vote)
                .join(Coloring, Coloring.id == Vote.coloring_id)
                .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
                .where(Vote.removed_at.is_(None))
                .group_by(MemberVersion.member)
            )
            shown_q = (
                select(MemberVersion.member, func.count(Coloring.id))
                .select_from(Coloring)
                .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
                .where(Coloring.message_id.is_not(None))
                .group_by(MemberVersion.member)
            )
            if guild_id is not None:
                votes_q = votes_q.join(Page, Page.id == Vote.page_id).where(
                    Page.guild_id == guild_id
                )
                shown_q = shown_q.join(Page, Page.id == Coloring.page_id).where(
                    Page.guild_id == guild_id
                )
            votes = dict((await s.execute(votes_q)).all())
            shown = dict((await s.execute(shown_q)).all())
            members = set(votes) | set(shown)
            rows = [MemberVotes(m, votes.get(m, 0), shown.get(m, 0)) for m in members]
            return sorted(rows, key=lambda r: (-r.votes, -r.share, r.member))

        return await self.run(tx, write=False)

    async def voted_pages(self, guild_id: int | None = None) -> list[VotedPage]:
        """Every live vote with the alternatives the voter saw (same reply message):
        what pairwise preference learning needs."""

        async def tx(s: AsyncSession) -> list[VotedPage]:
            stmt = (
                select(Vote, Page.guild_id, Page.sha256, Page.kind, Coloring.message_id)
                .join(Page, Page.id == Vote.page_id)
                .join(Coloring, Coloring.id == Vote.coloring_id)
                .where(Vote.removed_at.is_(None))
                .order_by(Vote.id)
            )
            if guild_id is not None:
                stmt = stmt.where(Page.guild_id == guild_id)
            votes = (await s.execute(stmt)).all()
            page_ids = {v.page_id for v, *_ in votes}
            refs_by_page: dict[int, list[tuple[int | None, ColoringRef]]] = {}
            if page_ids:
                rows = await s.execute(
                    _coloring_ref_query(with_page=True)
                    .where(Coloring.page_id.in_(page_ids))
                    .order_by(Coloring.id)
                )
                for row in rows:
                    refs_by_page.setdefault(row.page_id, []).append(
                        (row.message_id, _coloring_ref(row))
                    )
            out = []
            for vote, g_id, sha, kind, msg_id in votes:
                seen = [r for m, r in refs_by_page.get(vote.page_id, []) if m == msg_id]
                voted = next(r for r in seen if r.coloring_id == vote.coloring_id)
                others = tuple(r for r in seen if r.coloring_id != vote.coloring_id)
                out.append(
                    VotedPage(
                        vote_id=vote.id,
                        user_id=vote.user_id,
                        guild_id=g_id,
                        page_id=vote.page_id,
                        page_sha256=sha,
                        page_kind=kind,
                        voted=voted,
                        others=others,
                        voted_at=vote.added_at,
                        source=vote.source,
                    )
                )
            return out

        return await self.run(tx, write=False)

    # ---------------------------------------------------------------- forget

    async def forget_user(self, user_id: int) -> ForgetResult:
        """`/forget`: delete the user's pages (with every coloring and vote on them),
        all of the user's votes (history too), and stored images nothing else uses."""

        async def tx(s: AsyncSession) -> tuple[ForgetResult, set[str]]:
            own_pages = select(Page.id).where(Page.author_id == user_id)
            shas = set(
                (await s.execute(select(Page.sha256).where(Page.author_id == user_id))).scalars()
            )
            shas |= set(
                (
                    await s.execute(select(Coloring.sha256).where(Coloring.page_id.in_(own_pages)))
                ).scalars()
            )
            votes = (
                await s.execute(
                    delete(Vote).where(or_(Vote.user_id == user_id, Vote.page_id.in_(own_pages)))
                )
            ).rowcount
            colorings = (
                await s.execute(delete(Coloring).where(Coloring.page_id.in_(own_pages)))
            ).rowcount
            pages = (await s.execute(delete(Page).where(Page.author_id == user_id))).rowcount
            return ForgetResult(pages, colorings, votes, 0), shas

        result, candidates = await self.run(tx)
        files = await self._delete_unreferenced(candidates)
        return ForgetResult(result.pages, result.colorings, result.votes, files)

    async def _delete_unreferenced(self, candidates: set[str]) -> int:
        """Delete stored images among `candidates` that no page or coloring uses."""
        if self.store is None or not candidates:
            return 0

        async def tx(s: AsyncSession) -> set[str]:
            used = union(
                select(Page.sha256).where(Page.sha256.in_(candidates)),
                select(Coloring.sha256).where(Coloring.sha256.in_(candidates)),
            )
            return set((await s.execute(used)).scalars())

        still_used = await self.run(tx, write=False)
        return await asyncio.to_thread(self._delete_files, candidates - still_used)

    def _delete_files(self, shas: Iterable[str]) -> int:
        """Delete stored files; one that cannot be deleted is logged, not raised (the
        records are gone already; `collect_garbage` tries again later)."""
        assert self.store is not None
        deleted = 0
        for sha in shas:
            try:
                deleted += self.store.delete(sha)
            except OSError:
                log.warning("could not delete stored image %s", sha, exc_info=True)
        return deleted

    async def collect_garbage(self, *, min_age_seconds: float = 3600.0) -> int:
        """Delete stored images no page or coloring refers to (left by a crash between
        writing a file and committing its record, or by a /forget racing a new post)
        and stale temporary files, dotfiles included; returns how many. Files younger
        than `min_age_seconds` are kept: they may belong to a record being written."""
        from db.check import check_storage

        report = await check_storage(self, repair=True, min_age_s=min_age_seconds,
                                     files_only=True)
        return report.removed_files

    # ---------------------------------------------------------- member versions

    async def add_member_version(
        self,
        member: str,
        *,
        version: int | None = None,
        parent_version: int | None = None,
        weights_sha256: str | None = None,
        training_run_id: int | None = None,
        evaluation: dict[str, Any] | None = None,
    ) -> MemberVersion:
        """Record a new, unpromoted candidate version (what a retrain produced).

        `version` None takes the next number; `parent_version` None takes the version
        promoted now (if any) as the parent.
        """

        async def tx(s: AsyncSession) -> MemberVersion:
            if parent_version is not None:
                parent = await _member_version(s, member, parent_version)
            else:
                parent = await _promoted(s, member)
            number = version
            if number is None:
                latest = await s.scalar(
                    select(func.max(MemberVersion.version)).where(MemberVersion.member == member)
                )
                number = (latest or 0) + 1
            mv = MemberVersion(
                member=member,
                version=number,
                parent_id=parent.id if parent is not None else None,
                weights_sha256=weights_sha256,
                training_run_id=training_run_id,
                evaluation=evaluation,
                promoted=False,
            )
            s.add(mv)
            await s.flush()
            return mv

        # A concurrent add of the "next" version: the retry takes the one after.
        return await self.run(tx, retry_conflicts=version is None)

    async def get_member_version(self, member: str, version: int) -> MemberVersion:
        async def tx(s: AsyncSession) -> MemberVersion:
            return await _member_version(s, member, version)

        return await self.run(tx, write=False)

    async def member_versions(self, member: str | None = None) -> list[MemberVersion]:
        """Every recorded version (of one member), by member then version."""

        async def tx(s: AsyncSession) -> list[MemberVersion]:
            stmt = select(MemberVersion).order_by(MemberVersion.member, MemberVersion.version)
            if member is not None:
                stmt = stmt.where(MemberVersion.member == member)
            return list((await s.execute(stmt)).scalars())

        return await self.run(tx, write=False)

    async def promoted_versions(self) -> dict[str, MemberVersion]:
        """member -> its promoted (served) version."""

        async def tx(s: AsyncSession) -> dict[str, MemberVersion]:
            rows = await s.execute(select(MemberVersion).where(MemberVersion.promoted.is_(True)))
            return {mv.member: mv for mv in rows.scalars()}

        return await self.run(tx, write=False)

    async def set_evaluation(
        self, member: str, version: int, evaluation: dict[str, Any]
    ) -> MemberVersion:
        async def tx(s: AsyncSession) -> MemberVersion:
            mv = await _member_version(s, member, version)
            mv.evaluation = evaluation
            return mv

        return await self.run(tx)

    async def promote(self, member: str, version: int, reason: str = "") -> MemberVersion:
        """Make `version` the member's served version (the previous one is demoted)."""

        async def tx(s: AsyncSession) -> MemberVersion:
            nonlocal reason
            mv = await _member_version(s, member, version)
            current = await _promoted(s, member)
            if current is not None and current.id != mv.id:
                current.promoted = False
                await s.flush()  # leave the "one promoted" index first
            if not reason and current is not None and current.id != mv.id:
                reason = f"promoted over v{current.version}"
            mv.promoted = True
            mv.reason = reason
            mv.decided_at = utcnow()
            return mv

        return await self.run(tx, retry_conflicts=True)

    async def keep_unpromoted(self, member: str, version: int, reason: str) -> MemberVersion:
        """Record the gate's refusal: the version stays, unpromoted, with the reason."""

        async def tx(s: AsyncSession) -> MemberVersion:
            mv = await _member_version(s, member, version)
            if mv.promoted:
                raise Conflict(f"{member} v{version} is the promoted version; promote another")
            mv.reason = reason
            mv.decided_at = utcnow()
            return mv

        return await self.run(tx)

    async def rollback(self, member: str, reason: str = "rolled back") -> MemberVersion:
        """Demote the member's promoted version and promote its parent again; returns
        the parent. NotFound when nothing is promoted or it has no parent."""

        async def tx(s: AsyncSession) -> MemberVersion:
            current = await _promoted(s, member)
            if current is None:
                raise NotFound(f"{member} has no promoted version to roll back")
            if current.parent_id is None:
                raise NotFound(f"{member} v{current.version} has no parent to roll back to")
            parent = await s.get(MemberVersion, current.parent_id)
            assert parent is not None
            current.promoted = False
            current.reason = reason
            current.decided_at = utcnow()
            await s.flush()
            parent.promoted = True
            parent.reason = f"restored by rollback of v{current.version}"
            parent.decided_at = utcnow()
            return parent

        return await self.run(tx, retry_conflicts=True)

    # ---------------------------------------------------------- training runs

    async def start_training_run(
        self, kind: str, *, member: str | None = None, config: dict[str, Any] | None = None
    ) -> TrainingRun:
        async def tx(s: AsyncSession) -> TrainingRun:
            run = TrainingRun(kind=kind, member=member, config=config or {}, status="running")
            s.add(run)
            await s.flush()
            return run

        return await self.run(tx)

    async def finish_training_run(
        self,
        run_id: int,
        *,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> TrainingRun:
        """Mark a run done (or failed, when `error` is given) with its metrics."""

        async def tx(s: AsyncSession) -> TrainingRun:
            run = await s.get(TrainingRun, run_id)
            if run is None:
                raise NotFound(f"no training run {run_id}")
            run.status = "failed" if error else "done"
            run.metrics = metrics
            run.error = error
            run.finished_at = utcnow()
            return run

        return await self.run(tx)

    async def get_training_run(self, run_id: int) -> TrainingRun:
        async def tx(s: AsyncSession) -> TrainingRun:
            run = await s.get(TrainingRun, run_id)
            if run is None:
                raise NotFound(f"no training run {run_id}")
            return run

        return await self.run(tx, write=False)

    # ------------------------------------------------------------------- jobs

    async def create_job(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        page_id: int | None = None,
        max_attempts: int = 3,
        available_at: datetime | None = None,
    ) -> Job:
        async def tx(s: AsyncSession) -> Job:
            job = Job(
                kind=kind,
                payload=payload or {},
                page_id=page_id,
                max_attempts=max_attempts,
                status="queued",
                attempts=0,
                available_at=available_at or utcnow(),
            )
            s.add(job)
            await s.flush()
            return job

        return await self.run(tx)

    async def claim_job(
        self, worker: str, *, kinds: Iterable[str] | None = None, lease_seconds: float = 300.0
    ) -> Job | None:
        """Take the oldest available job (queued, or running with an expired lease:
        its worker died) for `worker`; None when there is none. Each claim counts an
        attempt; a job whose last attempt's lease expired is marked failed instead.
        Two workers never get the same job (row locks with SKIP LOCKED on
        PostgreSQL; one writer at a time on SQLite)."""
        kind_list = list(kinds) if kinds is not None else None

        async def tx(s: AsyncSession) -> Job | None:
            now = utcnow()
            for _ in range(100):  # bounded: each pass settles one job
                stmt = (
                    select(Job)
                    .where(
                        or_(
                            and_(Job.status == "queued", Job.available_at <= now),
                            and_(Job.status == "running", Job.lease_expires_at < now),
                        )
                    )
                    .order_by(Job.available_at, Job.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if kind_list is not None:
                    stmt = stmt.where(Job.kind.in_(kind_list))
                job = (await s.execute(stmt)).scalar_one_or_none()
                if job is None:
                    return None
                if job.status == "running" and job.attempts >= job.max_attempts:
                    job.status = "failed"
                    job.error = f"lease expired on attempt {job.attempts} (worker {job.worker})"
                    job.finished_at = now
                    job.lease_expires_at = None
                    await s.flush()
                    continue
                job.status = "running"
                job.attempts += 1
                job.worker = worker
                job.claimed_at = now
                job.lease_expires_at = now + timedelta(seconds=lease_seconds)
                return job
            return None

        return await self.run(tx)

    async def extend_lease(self, job_id: int, worker: str, lease_seconds: float = 300.0) -> bool:
        """Heartbeat of a long job; False when the job is no longer this worker's."""

        async def tx(s: AsyncSession) -> bool:
            result = await s.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            )
            return result.rowcount > 0

        return await self.run(tx)

    async def finish_job(self, job_id: int, result: dict[str, Any] | None = None) -> Job:
        async def tx(s: AsyncSession) -> Job:
            job = await _job(s, job_id)
            job.status = "done"
            job.result = result
            job.error = None
            job.finished_at = utcnow()
            job.lease_expires_at = None
            return job

        return await self.run(tx)

    async def fail_job(
        self, job_id: int, error: str, *, retry: bool = True, backoff_seconds: float = 5.0
    ) -> Job:
        """Record a failed attempt: queued again after a back-off (doubling per
        attempt) while attempts remain and `retry`, otherwise failed for good."""

        async def tx(s: AsyncSession) -> Job:
            job = await _job(s, job_id)
            job.error = error
            job.lease_expires_at = None
            if retry and job.attempts < job.max_attempts:
                job.status = "queued"
                delay = backoff_seconds * 2 ** max(0, job.attempts - 1)
                job.available_at = utcnow() + timedelta(seconds=delay)
            else:
                job.status = "failed"
                job.finished_at = utcnow()
            return job

        return await self.run(tx)

    async def get_job(self, job_id: int) -> Job:
        async def tx(s: AsyncSession) -> Job:
            return await _job(s, job_id)

        return await self.run(tx, write=False)


# ------------------------------------------------------------------ helpers


async def _member_version(s: AsyncSession, member: str, version: int) -> MemberVersion:
    mv = (
        await s.execute(
            select(MemberVersion).where(
                MemberVersion.member == member, MemberVersion.version == version
            )
        )
    ).scalar_one_or_none()
    if mv is None:
        raise NotFound(f"no version {version} of member {member!r}")
    return mv


async def _promoted(s: AsyncSession, member: str) -> MemberVersion | None:
    return (
        await s.execute(
            select(MemberVersion).where(
                MemberVersion.member == member, MemberVersion.promoted.is_(True)
            )
        )
    ).scalar_one_or_none()


async def _job(s: AsyncSession, job_id: int) -> Job:
    job = await s.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def _coloring_ref_query(with_page: bool = False) -> Any:
    columns = [
        Coloring.id,
        MemberVersion.member,
        MemberVersion.version,
        Coloring.member_version_id,
        Coloring.emoji,
        Coloring.sha256,
        Coloring.parameters,
    ]
    if with_page:
        columns += [Coloring.page_id, Coloring.message_id]
    return select(*columns).join(MemberVersion, MemberVersion.id == Coloring.member_version_id)


def _coloring_ref(row: Any) -> ColoringRef:
    return ColoringRef(
        coloring_id=row[0],
        member=row[1],
        version=row[2],
        member_version_id=row[3],
        emoji=row[4],
        sha256=row[5],
        parameters=row[6] or {},
    )

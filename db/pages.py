"""Pages people posted, the colorings the family made of them, and the reply
messages that show those colorings (the messages reactions vote on).

Images go to the store before the record that names them commits (db/check.py says
why that order makes every crash repairable).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.channels import ensure_guild_row
from db.core import DatabaseCore
from db.errors import NotFound
from db.models import Coloring, MemberVersion, Page
from db.results import NewColoring, RecordedPage, ReplyTarget
from db.versions import ensure_version


def normalize_emoji(emoji: str) -> str:
    """Drop variation selector-16, which some clients add to the same emoji."""
    return emoji.replace("\ufe0f", "").strip()


class PageQueries(DatabaseCore):
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
                await ensure_guild_row(s, guild_id, None)
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

    async def record_colorings(
        self,
        page_id: int,
        colorings: Sequence[NewColoring],
        *,
        message_id: int | None = None,
    ) -> list[Coloring]:
        """Store each coloring's PNG and record it (member versions created on first
        sight). `message_id` is the bot's reply showing them: reactions on it vote for
        them, also after a restart; Conflict when two of them share an emoji there."""
        shas = [await self._store_put(c.image) for c in colorings]

        async def tx(s: AsyncSession) -> list[Coloring]:
            if await s.get(Page, page_id) is None:
                raise NotFound(f"no page {page_id}")
            rows = []
            for new, sha in zip(colorings, shas, strict=True):
                mv = await ensure_version(s, new.member, new.version, new.weights_sha256)
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

"""Small builders shared by the data-layer tests."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Coloring, Vote
from db.repo import Database
from db.results import NewColoring

# The default family's voting emoji (NOTES.md): the vote keys.
FAMILY = {"openmoji": "😀", "fluent": "🌈", "clipart": "📎", "artworks": "🎨"}


def png(tag: str) -> bytes:
    """Distinct, deterministic bytes standing in for an image."""
    return b"\x89PNG\r\n\x1a\n" + hashlib.sha256(tag.encode()).digest() * 4


async def posted_page(
    db: Database,
    *,
    message_id: int,
    reply_id: int,
    guild_id: int = 1001,
    channel_id: int = 2002,
    author_id: int = 3003,
    image: bytes | None = None,
    members: dict[str, str] | None = None,
) -> tuple[int, dict[str, int]]:
    """A page posted, colored by every member and replied to: (page id, emoji -> coloring id)."""
    members = members or FAMILY
    recorded = await db.record_page(
        image if image is not None else png(f"page-{message_id}"),
        guild_id=guild_id,
        channel_id=channel_id,
        message_id=message_id,
        author_id=author_id,
        filename="page.png",
        kind="lineart",
        width=64,
        height=48,
    )
    page_id = recorded.page.id
    colorings = await db.record_colorings(
        page_id,
        [
            NewColoring(
                member=name,
                version=1,
                emoji=emoji,
                image=png(f"{page_id}-{name}"),
                parameters={"strength": 1.0},
                duration_ms=12.5,
            )
            for name, emoji in members.items()
        ],
        message_id=reply_id,
    )
    return page_id, {c.emoji: c.id for c in colorings}


async def colorings_of(db: Database, page_id: int) -> list[Coloring]:
    """The page's colorings as stored, oldest first."""

    async def tx(s: AsyncSession) -> list[Coloring]:
        query = select(Coloring).where(Coloring.page_id == page_id).order_by(Coloring.id)
        return list((await s.execute(query)).scalars())

    return await db.run(tx, write=False)


async def vote_history(db: Database, page_id: int, user_id: int | None = None) -> list[Vote]:
    """Every vote on a page, taken-back ones included, in the order they were cast."""

    async def tx(s: AsyncSession) -> list[Vote]:
        query = select(Vote).where(Vote.page_id == page_id).order_by(Vote.id)
        if user_id is not None:
            query = query.where(Vote.user_id == user_id)
        return list((await s.execute(query)).scalars())

    return await db.run(tx, write=False)

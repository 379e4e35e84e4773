"""Small builders shared by the data-layer tests."""

from __future__ import annotations

import hashlib

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
    )
    await db.link_reply(reply_id, [c.id for c in colorings])
    return page_id, {c.emoji: c.id for c in colorings}

"""What the public web page reads, and the one switch behind its gallery.

The gallery shows a server's pages only while its `Guild.settings["gallery"]` is true
(`/gallery enable`; the settings JSON exists for such knobs, so no migration). Every
function here reads live, one short read-only transaction through `Database.run`:
a page removed by `/forget`, or a server that turned the gallery off, is gone from the
next request on.

    await set_gallery(db, guild_id, True, name="Family")   # /gallery enable
    await gallery_guilds(db) -> [PublicGuild]              # servers shown, by name
    await gallery_pages(db, guild_id=None, limit=24, offset=0) -> [GalleryPage]
    await gallery_image_sha(db, "page" | "coloring", record_id) -> sha256 | None
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Coloring, Guild, MemberVersion, Page, Vote

if TYPE_CHECKING:
    from db.repo import Database

GALLERY_SETTING = "gallery"  # key in Guild.settings: True while the gallery shows the server


@dataclass(frozen=True)
class PublicGuild:
    id: int
    name: str  # as Discord last told us; may be empty


@dataclass(frozen=True)
class GalleryColoring:
    id: int
    member: str
    version: int
    emoji: str
    votes: int  # live votes (taken-back ones not counted)


@dataclass
class GalleryPage:
    id: int
    guild: PublicGuild
    created_at: datetime
    kind: str | None
    width: int | None
    height: int | None
    colorings: list[GalleryColoring] = field(default_factory=list)

    @property
    def votes(self) -> int:
        return sum(c.votes for c in self.colorings)

    @property
    def favourite(self) -> GalleryColoring | None:
        """The coloring with the most votes; None without votes or on a tie for first."""
        ranked = sorted(self.colorings, key=lambda c: -c.votes)
        if not ranked or ranked[0].votes == 0:
            return None
        if len(ranked) > 1 and ranked[1].votes == ranked[0].votes:
            return None
        return ranked[0]


def _shown(settings: dict[str, Any] | None) -> bool:
    return bool((settings or {}).get(GALLERY_SETTING))


async def set_gallery(db: Database, guild_id: int, enabled: bool, *,
                      name: str | None = None) -> None:
    """Turn the server's gallery on or off (`/gallery enable|disable`)."""
    if name is not None:
        await db.ensure_guild(guild_id, name)  # the gallery shows the server by name
    await db.update_guild_settings(guild_id, settings={GALLERY_SETTING: bool(enabled)})


async def _gallery_guilds(s: AsyncSession) -> dict[int, PublicGuild]:
    # Few rows (one per server) and a JSON flag: filtered here rather than with each
    # dialect's JSON operators.
    rows = await s.execute(select(Guild.id, Guild.name, Guild.settings).order_by(Guild.name))
    return {gid: PublicGuild(gid, name or "") for gid, name, settings in rows if _shown(settings)}


async def gallery_guilds(db: Database) -> list[PublicGuild]:
    """Servers whose gallery is on, by name."""

    async def tx(s: AsyncSession) -> list[PublicGuild]:
        return list((await _gallery_guilds(s)).values())

    return await db.run(tx, write=False)


async def gallery_pages(
    db: Database, *, guild_id: int | None = None, limit: int = 24, offset: int = 0
) -> list[GalleryPage]:
    """The most recent colored pages of servers whose gallery is on (one server or all),
    newest first, each with its colorings and their live vote counts."""

    async def tx(s: AsyncSession) -> list[GalleryPage]:
        guilds = await _gallery_guilds(s)
        shown = [g for g in guilds if guild_id is None or g == guild_id]
        if not shown:
            return []
        pages = (
            await s.execute(
                select(Page)
                .where(Page.guild_id.in_(shown), Page.id.in_(select(Coloring.page_id)))
                .order_by(Page.created_at.desc(), Page.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).scalars().all()
        if not pages:
            return []
        ids = [p.id for p in pages]
        votes = dict(
            (
                await s.execute(
                    select(Vote.coloring_id, func.count())
                    .where(Vote.page_id.in_(ids), Vote.removed_at.is_(None))
                    .group_by(Vote.coloring_id)
                )
            ).all()
        )
        colorings: dict[int, list[GalleryColoring]] = {}
        rows = await s.execute(
            select(Coloring.id, Coloring.page_id, MemberVersion.member, MemberVersion.version,
                   Coloring.emoji)
            .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
            .where(Coloring.page_id.in_(ids))
            .order_by(MemberVersion.member, Coloring.id)
        )
        for cid, pid, member, version, emoji in rows:
            colorings.setdefault(pid, []).append(
                GalleryColoring(cid, member, version, emoji, int(votes.get(cid, 0))))
        return [
            GalleryPage(p.id, guilds[p.guild_id], p.created_at, p.kind, p.width, p.height,
                        colorings.get(p.id, []))
            for p in pages
            if p.guild_id is not None  # always: only shown servers' pages were read
        ]

    return await db.run(tx, write=False)


async def gallery_image_sha(db: Database, kind: str, record_id: int) -> str | None:
    """The stored image of a page or coloring (`kind` "page" | "coloring") when the
    gallery shows it right now; None otherwise (unknown, forgotten, or its server's
    gallery is off)."""
    if kind == "page":
        query = select(Page.sha256, Guild.settings).join(Guild, Guild.id == Page.guild_id)
        query = query.where(Page.id == record_id)
    elif kind == "coloring":
        query = (
            select(Coloring.sha256, Guild.settings)
            .join(Page, Page.id == Coloring.page_id)
            .join(Guild, Guild.id == Page.guild_id)
            .where(Coloring.id == record_id)
        )
    else:
        raise ValueError(f"unknown image kind {kind!r}")

    async def tx(s: AsyncSession) -> str | None:
        row = (await s.execute(query)).first()
        return row[0] if row is not None and _shown(row[1]) else None

    return await db.run(tx, write=False)

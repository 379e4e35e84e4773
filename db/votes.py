"""Votes: a reaction on a reply message is a vote for the coloring with that emoji.

Raw reaction events carry only (message id, emoji, user id), so a vote is found and
kept by those alone and counts after a restart. A user has at most one live vote per
page (a partial unique index); moving a vote ends the old one, and the history stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import DatabaseCore, advisory_lock, changed_rows
from db.models import Coloring, MemberVersion, Page, Vote
from db.pages import normalize_emoji
from db.results import ColoringRef, VotedPage, VoteExportRow, VoteResult
from db.types import utcnow

# First key of the two-int advisory locks that serialize one (user, page) vote.
_VOTE_LOCK_NAMESPACE = 0x766F7465  # "vote"


class VoteQueries(DatabaseCore):
    async def _lock_user_page(self, s: AsyncSession, user_id: int, page_id: int) -> None:
        """Serialize vote changes of one (user, page)."""
        await advisory_lock(s, _VOTE_LOCK_NAMESPACE, f"{user_id}:{page_id}")

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
            ended = await changed_rows(
                s,
                update(Vote)
                .where(
                    Vote.user_id == user_id,
                    Vote.page_id == page_id,
                    Vote.coloring_id == coloring_id,
                    Vote.removed_at.is_(None),
                )
                .values(removed_at=at or utcnow()),
            )
            return ended > 0

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

    async def export_votes(self, guild_id: int | None = None) -> list[VoteExportRow]:
        """The live votes with where they were cast and for which member version."""

        async def tx(s: AsyncSession) -> list[VoteExportRow]:
            stmt = (
                select(
                    Page.guild_id,
                    Page.channel_id,
                    Coloring.message_id,
                    Page.id.label("page_id"),
                    Page.sha256.label("page_sha256"),
                    Page.message_id.label("page_message_id"),
                    Vote.user_id,
                    MemberVersion.member,
                    MemberVersion.version.label("member_version"),
                    Coloring.emoji,
                    Coloring.id.label("coloring_id"),
                    Vote.added_at.label("voted_at"),
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
            return [VoteExportRow(**row._mapping) for row in await s.execute(stmt)]

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
                    _coloring_refs().where(Coloring.page_id.in_(page_ids)).order_by(Coloring.id)
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


def _coloring_refs() -> Select[Any]:
    """Colorings with their member version, page and reply message."""
    return select(
        Coloring.id,
        MemberVersion.member,
        MemberVersion.version,
        Coloring.member_version_id,
        Coloring.emoji,
        Coloring.sha256,
        Coloring.parameters,
        Coloring.page_id,
        Coloring.message_id,
    ).join(MemberVersion, MemberVersion.id == Coloring.member_version_id)


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

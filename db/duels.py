"""Duels: two colorings of one page shown without names, and people's A / B / tie votes.

A duel vote compares exactly the two colorings shown, so each one is a clean
head-to-head pair (a reaction vote only names a favourite among all shown). One vote
per person per duel: voting again replaces it. Deleting a page or a coloring (as
`/forget` does) deletes its duels and their votes with it (foreign keys).

    duel = await create_duel(db, page_id, coloring_a_id, coloring_b_id, guild_id=...)
    await set_duel_message(db, duel.id, message_id)
    result = await cast_duel_vote(db, duel.id, user_id, "a")    # .status, .duel, .tally
    pairs = await duel_pairs(db, guild_id)                       # for the board
    sides = await page_sides(db, page_id)         # colorings that could meet in a duel
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.core import changed_rows
from db.errors import NotFound
from db.models import DUEL_CHOICES, Coloring, Duel, DuelVote, MemberVersion
from db.types import utcnow

if TYPE_CHECKING:
    from db import Database

DuelChoice = Literal["a", "b", "tie"]
DuelVoteStatus = Literal["added", "changed", "unchanged"]


@dataclass(frozen=True)
class DuelSide:
    """One of the two colorings of a duel, with the member who made it."""

    coloring_id: int
    member: str
    version: int
    emoji: str
    sha256: str  # the stored PNG


@dataclass(frozen=True)
class DuelInfo:
    id: int
    page_id: int
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    a: DuelSide
    b: DuelSide
    created_at: datetime


@dataclass(frozen=True)
class DuelTally:
    a: int = 0
    b: int = 0
    tie: int = 0

    @property
    def votes(self) -> int:
        return self.a + self.b + self.tie


@dataclass(frozen=True)
class DuelVoteResult:
    status: DuelVoteStatus  # "added" (first vote), "changed" (replaced), "unchanged"
    duel: DuelInfo
    choice: DuelChoice
    previous: DuelChoice | None  # the replaced choice, when "changed"
    tally: DuelTally  # every vote in this duel, this one included


@dataclass(frozen=True)
class DuelPair:
    """One duel vote as a head-to-head pair (the board's input)."""

    vote_id: int
    duel_id: int
    user_id: int
    guild_id: int | None
    page_id: int
    member_a: str
    version_a: int
    member_b: str
    version_b: int
    choice: DuelChoice
    voted_at: datetime

    @property
    def winner(self) -> str | None:
        """The member whose coloring won; None for a tie."""
        return {"a": self.member_a, "b": self.member_b}.get(self.choice)

    @property
    def loser(self) -> str | None:
        return {"a": self.member_b, "b": self.member_a}.get(self.choice)


def _check_choice(choice: str) -> DuelChoice:
    if choice not in DUEL_CHOICES:
        raise ValueError(f"a duel vote is one of {DUEL_CHOICES}, not {choice!r}")
    return choice  # type: ignore[return-value]


async def _duel_info(s: AsyncSession, duel_id: int) -> DuelInfo:
    ca, cb = aliased(Coloring), aliased(Coloring)
    va, vb = aliased(MemberVersion), aliased(MemberVersion)
    row = (
        await s.execute(
            select(Duel, ca, va.member, va.version, cb, vb.member, vb.version)
            .join(ca, ca.id == Duel.coloring_a_id)
            .join(va, va.id == ca.member_version_id)
            .join(cb, cb.id == Duel.coloring_b_id)
            .join(vb, vb.id == cb.member_version_id)
            .where(Duel.id == duel_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no duel {duel_id}")
    duel, a, member_a, version_a, b, member_b, version_b = row
    return DuelInfo(
        id=duel.id, page_id=duel.page_id, guild_id=duel.guild_id, channel_id=duel.channel_id,
        message_id=duel.message_id,
        a=DuelSide(a.id, member_a, version_a, a.emoji, a.sha256),
        b=DuelSide(b.id, member_b, version_b, b.emoji, b.sha256),
        created_at=duel.created_at,
    )


async def create_duel(
    db: Database,
    page_id: int,
    coloring_a_id: int,
    coloring_b_id: int,
    *,
    guild_id: int | None = None,
    channel_id: int | None = None,
    message_id: int | None = None,
) -> DuelInfo:
    """A duel between two colorings of page `page_id` (A is shown first). Raises
    NotFound when a coloring is gone or not of that page, ValueError for one coloring
    against itself."""
    if coloring_a_id == coloring_b_id:
        raise ValueError("a duel needs two different colorings")

    async def tx(s: AsyncSession) -> DuelInfo:
        found = set(
            (
                await s.execute(
                    select(Coloring.id).where(
                        Coloring.id.in_((coloring_a_id, coloring_b_id)),
                        Coloring.page_id == page_id,
                    )
                )
            ).scalars()
        )
        if found != {coloring_a_id, coloring_b_id}:
            raise NotFound(f"colorings {coloring_a_id}, {coloring_b_id} of page {page_id}")
        duel = Duel(page_id=page_id, coloring_a_id=coloring_a_id, coloring_b_id=coloring_b_id,
                    guild_id=guild_id, channel_id=channel_id, message_id=message_id,
                    created_at=utcnow())
        s.add(duel)
        await s.flush()
        return await _duel_info(s, duel.id)

    return await db.run(tx)


async def set_duel_message(
    db: Database, duel_id: int, message_id: int, channel_id: int | None = None
) -> None:
    """Note the message that shows the duel (sent after the duel was created, because
    its buttons carry the duel's id)."""

    async def tx(s: AsyncSession) -> None:
        values: dict[str, int] = {"message_id": message_id}
        if channel_id is not None:
            values["channel_id"] = channel_id
        if await changed_rows(s, update(Duel).where(Duel.id == duel_id).values(**values)) == 0:
            raise NotFound(f"no duel {duel_id}")

    await db.run(tx)


async def get_duel(db: Database, duel_id: int) -> DuelInfo:
    async def tx(s: AsyncSession) -> DuelInfo:
        return await _duel_info(s, duel_id)

    return await db.run(tx, write=False)


async def page_sides(db: Database, page_id: int) -> list[DuelSide]:
    """The colorings of page `page_id` that could meet in a duel, oldest first."""

    async def tx(s: AsyncSession) -> list[DuelSide]:
        rows = await s.execute(
            select(Coloring, MemberVersion.member, MemberVersion.version)
            .join(MemberVersion, MemberVersion.id == Coloring.member_version_id)
            .where(Coloring.page_id == page_id)
            .order_by(Coloring.id)
        )
        return [DuelSide(c.id, member, version, c.emoji, c.sha256) for c, member, version in rows]

    return await db.run(tx, write=False)


async def _tally(s: AsyncSession, duel_id: int) -> DuelTally:
    rows = await s.execute(
        select(DuelVote.choice, func.count()).where(DuelVote.duel_id == duel_id)
        .group_by(DuelVote.choice)
    )
    counts = {choice: int(n) for choice, n in rows}
    return DuelTally(counts.get("a", 0), counts.get("b", 0), counts.get("tie", 0))


async def cast_duel_vote(
    db: Database,
    duel_id: int,
    user_id: int,
    choice: str,
    *,
    source: str = "discord",
    at: datetime | None = None,
) -> DuelVoteResult:
    """`user_id` votes `choice` ("a", "b" or "tie") in duel `duel_id`; a vote they cast
    before in this duel is replaced. Raises NotFound when the duel is gone."""
    picked = _check_choice(choice)

    async def tx(s: AsyncSession) -> DuelVoteResult:
        duel = await _duel_info(s, duel_id)
        current = (
            await s.execute(
                select(DuelVote).where(DuelVote.duel_id == duel_id, DuelVote.user_id == user_id)
            )
        ).scalar_one_or_none()
        previous: DuelChoice | None = None
        if current is None:
            s.add(DuelVote(duel_id=duel_id, user_id=user_id, choice=picked, source=source,
                           voted_at=at or utcnow()))
            status: DuelVoteStatus = "added"
        elif current.choice == picked:
            status = "unchanged"
        else:
            previous = _check_choice(current.choice)
            current.choice, current.source, current.voted_at = picked, source, at or utcnow()
            status = "changed"
        await s.flush()
        return DuelVoteResult(status, duel, picked, previous, await _tally(s, duel_id))

    # Two first votes of one person at once: the unique (duel, user) constraint refuses
    # the second insert, and its retry replaces the first instead.
    return await db.run(tx, retry_conflicts=True)


async def duel_pairs(db: Database, guild_id: int | None = None) -> list[DuelPair]:
    """Every duel vote (of one guild, or all), oldest first."""
    ca, cb = aliased(Coloring), aliased(Coloring)
    va, vb = aliased(MemberVersion), aliased(MemberVersion)

    async def tx(s: AsyncSession) -> list[DuelPair]:
        query = (
            select(DuelVote, Duel.guild_id, Duel.page_id, va.member, va.version,
                   vb.member, vb.version)
            .join(Duel, Duel.id == DuelVote.duel_id)
            .join(ca, ca.id == Duel.coloring_a_id)
            .join(va, va.id == ca.member_version_id)
            .join(cb, cb.id == Duel.coloring_b_id)
            .join(vb, vb.id == cb.member_version_id)
            .order_by(DuelVote.id)
        )
        if guild_id is not None:
            query = query.where(Duel.guild_id == guild_id)
        return [
            DuelPair(vote.id, vote.duel_id, vote.user_id, guild, page, ma, vera, mb, verb,
                     _check_choice(vote.choice), vote.voted_at)
            for vote, guild, page, ma, vera, mb, verb in (await s.execute(query))
        ]

    return await db.run(tx, write=False)


async def forget_duel_votes(db: Database, user_id: int) -> int:
    """Delete every duel vote of `user_id` (part of `/forget`); returns how many."""

    async def tx(s: AsyncSession) -> int:
        return await changed_rows(s, delete(DuelVote).where(DuelVote.user_id == user_id))

    return await db.run(tx)

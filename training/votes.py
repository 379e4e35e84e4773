"""Preferences from votes: who beat whom on each page.

A vote says "of this page's colorings, I like this one best". It becomes one pairwise
preference against each *other* coloring of the same page (the voted coloring wins,
the other loses), the way Chatbot Arena turns a battle into a pair. One vote on a page
colored by four members gives three pairs; they share the vote as their `group`, so a
bootstrap can resample whole votes instead of pretending the three pairs are
independent.

Pure functions over plain records sit at the top (numpy-free even), the database
adapter (`load_preferences`) below them reads through the `db` repository — the same
code the bot writes votes with. No torch here: the bot's /leaderboard imports this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from db import Database, VotedPage


@dataclass(frozen=True)
class ColoringRecord:
    """One coloring of a page by one member version."""

    coloring_id: int
    page_id: int
    member: str
    version: int = 1
    guild_id: int | None = None  # the guild the page was posted in (None: not from Discord)


@dataclass(frozen=True)
class VoteRecord:
    """One live vote: `user_id` likes `coloring_id` best among the colorings of `page_id`."""

    user_id: int
    page_id: int
    coloring_id: int
    guild_id: int | None = None
    vote_id: int | None = None


@dataclass(frozen=True)
class Preference:
    """The winner's coloring was preferred over the loser's, on one page, by one vote."""

    page_id: int
    winner: str  # member name (or "name@version" when keyed by version)
    loser: str
    winner_coloring_id: int
    loser_coloring_id: int
    group: int  # the vote this pair came from (pairs of one vote share it)
    guild_id: int | None = None
    user_id: int | None = None


@dataclass
class PreferenceSet:
    """All pairs of a selection of votes, plus what the fit and the bot want to show."""

    pairs: list[Preference] = field(default_factory=list)
    votes: int = 0  # votes that produced at least one pair
    pages: int = 0  # pages with at least one such vote
    skipped_votes: int = 0  # votes on a coloring we do not know, or a page with one coloring

    @property
    def members(self) -> list[str]:
        return sorted({p.winner for p in self.pairs} | {p.loser for p in self.pairs})


def member_key(member: str, version: int, by_version: bool) -> str:
    return f"{member}@{version}" if by_version else member


def preferences_from_votes(
    votes: Iterable[VoteRecord],
    colorings: Iterable[ColoringRecord],
    *,
    guild_id: int | None = None,
    by_version: bool = False,
    members: Sequence[str] | None = None,
) -> PreferenceSet:
    """Turn live votes into pairs: per page, the voted coloring vs each other coloring.

    `guild_id` keeps only votes cast in that guild (None: every guild, the overall
    board). `by_version` keys players by "member@version" instead of member name, to
    rank versions of one member against each other. `members` keeps only pairs between
    the named members. When a page was colored more than once by the same member key
    (say, again with another strength), the voted coloring wins against each of those
    other colorings, but never against itself.
    """
    by_page: dict[int, list[ColoringRecord]] = {}
    by_id: dict[int, ColoringRecord] = {}
    for c in colorings:
        by_page.setdefault(c.page_id, []).append(c)
        by_id[c.coloring_id] = c
    builder = _PairBuilder(by_version, members)
    for i, vote in enumerate(votes):
        if guild_id is not None and vote.guild_id != guild_id:
            continue
        won = by_id.get(vote.coloring_id)
        if won is None or won.page_id != vote.page_id:
            builder.out.skipped_votes += 1
            continue
        others = [
            (c.coloring_id, c.member, c.version)
            for c in by_page[vote.page_id]
            if c.coloring_id != won.coloring_id
        ]
        builder.add(
            vote.page_id,
            vote.vote_id if vote.vote_id is not None else i,
            vote.guild_id,
            vote.user_id,
            (won.coloring_id, won.member, won.version),
            others,
        )
    return builder.done()


class _PairBuilder:
    """One vote -> its pairs, by the rules both entry points share."""

    def __init__(self, by_version: bool, members: Sequence[str] | None) -> None:
        self.by_version = by_version
        self.allowed = set(members) if members is not None else None
        self.out = PreferenceSet()
        self.pages: set[int] = set()

    def add(
        self,
        page_id: int,
        group: int,
        guild_id: int | None,
        user_id: int | None,
        won: tuple[int, str, int],  # (coloring id, member, version)
        others: Iterable[tuple[int, str, int]],
    ) -> None:
        won_id, won_member, won_version = won
        if self.allowed is not None and won_member not in self.allowed:
            return
        winner = member_key(won_member, won_version, self.by_version)
        made = 0
        for other_id, other_member, other_version in others:
            loser = member_key(other_member, other_version, self.by_version)
            if loser == winner or (self.allowed is not None and other_member not in self.allowed):
                continue
            self.out.pairs.append(
                Preference(
                    page_id=page_id,
                    winner=winner,
                    loser=loser,
                    winner_coloring_id=won_id,
                    loser_coloring_id=other_id,
                    group=group,
                    guild_id=guild_id,
                    user_id=user_id,
                )
            )
            made += 1
        if made:
            self.out.votes += 1
            self.pages.add(page_id)
        else:
            self.out.skipped_votes += 1

    def done(self) -> PreferenceSet:
        self.out.pages = len(self.pages)
        return self.out


def win_counts(prefs: Iterable[Preference]) -> dict[tuple[str, str], int]:
    """(winner, loser) -> how often; a quick table for logs and tests."""
    counts: dict[tuple[str, str], int] = {}
    for p in prefs:
        counts[(p.winner, p.loser)] = counts.get((p.winner, p.loser), 0) + 1
    return counts


# --- reading through the db repository -------------------------------------------------


def preferences_from_voted_pages(
    voted: Iterable[VotedPage],
    *,
    guild_id: int | None = None,
    by_version: bool = False,
    members: Sequence[str] | None = None,
) -> PreferenceSet:
    """Pairs from `db.VotedPage` rows: the voted coloring against each coloring the voter
    saw beside it (the same reply message), by the rules of `preferences_from_votes`."""
    builder = _PairBuilder(by_version, members)
    for row in voted:
        if guild_id is not None and row.guild_id != guild_id:
            continue
        builder.add(
            row.page_id,
            row.vote_id,
            row.guild_id,
            row.user_id,
            (row.voted.coloring_id, row.voted.member, row.voted.version),
            [(o.coloring_id, o.member, o.version) for o in row.others],
        )
    return builder.done()


async def load_preferences(
    db: Database,
    guild_id: int | None = None,
    *,
    by_version: bool = False,
    members: Sequence[str] | None = None,
) -> PreferenceSet:
    """The pairs of every live vote (in one guild, or everywhere), read through `db`."""
    rows = await db.voted_pages(guild_id)
    return preferences_from_voted_pages(rows, by_version=by_version, members=members)

"""Where `/leaderboard` gets its standings: pluggable.

`VoteCountLeaderboard` ranks members by live votes (what the database counts). The
vote-learning package can provide a Bradley-Terry source with the same interface:
`method` (a word for the header) and `await standings(guild_id) -> list[Standing]`;
give it to `ColorBot(leaderboard=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Standing:
    member: str
    score: float  # what the ranking sorts by, higher is better
    detail: str  # one line for people: "12 votes (40% of 30 shown)"


class LeaderboardSource(Protocol):
    method: str

    async def standings(self, guild_id: int | None) -> list[Standing]: ...


class VoteCountLeaderboard:
    method = "live votes"

    def __init__(self, db: Any) -> None:
        self.db = db

    async def standings(self, guild_id: int | None) -> list[Standing]:
        rows = await self.db.vote_counts(guild_id)
        return [
            Standing(
                member=row.member,
                score=float(row.votes),
                detail=f"{row.votes} vote{'s' if row.votes != 1 else ''} "
                f"({row.share:.0%} of {row.shown} shown)",
            )
            for row in rows
        ]

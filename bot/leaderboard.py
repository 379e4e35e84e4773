"""What `/leaderboard` reads: any source with this interface.

The default source is `training.leaderboard.BradleyTerryLeaderboard`: ratings from a
Bradley-Terry fit over the vote pairs, with bootstrap 95% intervals and a chart (numpy
and Pillow only, so the bot still never imports torch). Another source can be given to
`ColorBot(leaderboard=...)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Standing(Protocol):
    """One member's line on the board."""

    member: str

    @property
    def detail(self) -> str: ...  # one line for people: "1043 (1001–1090, 95%) · ..."


class LeaderboardSource(Protocol):
    method: str  # a few words for the header: how the board was made

    async def standings(self, guild_id: int | None) -> Sequence[Standing]:
        """Best first; `guild_id` None is the board over every guild."""
        ...

    def chart_png(self, standings: Sequence[Standing]) -> bytes | None:
        """A picture of the board to attach, or None."""
        ...

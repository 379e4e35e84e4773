"""What `/leaderboard` reads: any source with this interface.

The default source is `training.leaderboard.VoteLeaderboard`: each member's favourite
share (the share of votes its coloring would get as the favourite if every member's
coloring were shown side by side; a favourite-choice model fitted to the colorings each
vote saw), with bootstrap 95% intervals and a chart, plus the judge's head-to-head
board that the latest retrain cycle stored with its training run. numpy and Pillow
only, so the bot still never imports torch. Another source can be given to
`ColorBot(leaderboard=...)`; `meaning` and `judge_standings` are optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Standing(Protocol):
    """One member's line on the board."""

    member: str

    @property
    def detail(self) -> str: ...  # one line for people: "31% favourite share (27–35%, 95%) ..."


class LeaderboardSource(Protocol):
    method: str  # a few words for the header: how the board was made
    # Optional: `meaning` (one sentence: what the number means) and
    # `async judge_standings(guild_id) -> (rows, what they are)`, the judge's board.

    async def standings(self, guild_id: int | None) -> Sequence[Standing]:
        """Best first; `guild_id` None is the board over every guild."""
        ...

    def chart_png(self, standings: Sequence[Standing]) -> bytes | None:
        """A picture of the board to attach, or None."""
        ...

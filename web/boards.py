"""The leaderboards the page shows: `training.leaderboard`'s rows and chart, kept for a
short while (the bootstrap refits a few hundred times; a public page may be reloaded
often, and votes trickle in)."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.leaderboard import LeaderboardRow, chart_png, leaderboard_rows

if TYPE_CHECKING:
    from db import Database


@dataclass
class Board:
    rows: list[LeaderboardRow]
    chart_data_uri: str  # the chart PNG inline: one request, and it always matches the rows
    made_at: float

    @property
    def pairs(self) -> int:
        return sum(r.games for r in self.rows) // 2

    @property
    def scale(self) -> tuple[float, float]:
        """Low and high end of the interval bars (every interval fits, with a margin)."""
        lo = min(r.lower for r in self.rows)
        hi = max(r.upper for r in self.rows)
        pad = max(10.0, (hi - lo) * 0.08)
        return lo - pad, hi + pad

    def percent(self, value: float) -> float:
        lo, hi = self.scale
        return round(100.0 * (value - lo) / (hi - lo), 2)


class BoardCache:
    def __init__(self, ttl_s: float = 30.0, rounds: int = 200) -> None:
        self.ttl_s = ttl_s
        self.rounds = rounds
        self._boards: dict[int | None, Board] = {}
        self._locks: dict[int | None, asyncio.Lock] = {}

    async def board(self, db: Database, guild_id: int | None, emojis: dict[str, str],
                    title: str) -> Board:
        lock = self._locks.setdefault(guild_id, asyncio.Lock())
        async with lock:  # one refit at a time per board, however many readers
            cached = self._boards.get(guild_id)
            if cached is not None and time.monotonic() - cached.made_at < self.ttl_s:
                return cached
            rows = await leaderboard_rows(db, guild_id, rounds=self.rounds, emojis=emojis)
            chart = ""
            if rows:
                png = await asyncio.to_thread(chart_png, rows, title)
                chart = "data:image/png;base64," + base64.b64encode(png).decode()
            board = Board(rows, chart, time.monotonic())
            self._boards[guild_id] = board
            return board

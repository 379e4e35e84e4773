"""The head-to-head board: a Bradley–Terry fit over duel votes, with bootstrap 95%
intervals (`training.leaderboard`'s fit and rows, numpy only: the bot still never imports torch).

A duel vote compares exactly two colorings, so each is one clean pair. A tie counts
as half a win for each side, as Chatbot Arena counts them: a decided vote enters the
fit as two identical pairs, a tie as one pair each way. Intervals come from refits on
resamples of the votes. A rating says how often a member's coloring would beat
another's head to head (400 points = 10:1 odds); the reaction board (`/leaderboard`)
says how often it is picked as the favourite among all shown.

`DuelBoard(db)` has the interface `/leaderboard` reads (`bot.leaderboard.
LeaderboardSource`), so the same command can show either board.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from training.leaderboard import LeaderboardRow, bradley_terry_rows, chart_png

if TYPE_CHECKING:
    from db import Database
    from db.duels import DuelPair


@dataclass
class DuelRow(LeaderboardRow):
    """One member's line on the head-to-head board; `wins` and `ties` count duel votes,
    `games` every duel vote the member was in."""

    ties: int = 0

    @property
    def losses(self) -> int:
        return self.games - self.wins - self.ties

    @property
    def detail(self) -> str:
        return (
            f"{self.rating:.0f} ({self.lower:.0f}–{self.upper:.0f}, 95%) · "
            f"won {self.wins}, tied {self.ties}, lost {self.losses} of {self.games} duels"
        )


def head_to_head_rows(
    pairs: Sequence[DuelPair],
    *,
    rounds: int = 200,
    seed: int = 0,
    emojis: dict[str, str] | None = None,
) -> list[DuelRow]:
    """Ranked rows (best first) from duel votes; a duel between two colorings of the
    same member says nothing about members and is left out."""
    pairs = [p for p in pairs if p.member_a != p.member_b]
    if not pairs:
        return []
    players = sorted({p.member_a for p in pairs} | {p.member_b for p in pairs})
    index = {name: i for i, name in enumerate(players)}
    n = len(players)
    winners, losers, groups = [], [], []
    wins, ties, games = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    for group, p in enumerate(pairs):
        a, b = index[p.member_a], index[p.member_b]
        games[[a, b]] += 1
        if p.choice == "tie":
            ties[[a, b]] += 1
            winners += [a, b]
            losers += [b, a]
        else:
            w, lo = (a, b) if p.choice == "a" else (b, a)
            wins[w] += 1
            winners += [w, w]
            losers += [lo, lo]
        groups += [group, group]
    rows = bradley_terry_rows(
        players, np.array(winners), np.array(losers), np.array(groups), wins=wins,
        games=games, rounds=rounds, seed=seed, emojis=emojis,
    )
    return [DuelRow(**asdict(row), ties=int(ties[index[row.member]])) for row in rows]


def head_to_head_records(pairs: Sequence[DuelPair]) -> list[str]:
    """One line per pair of members that met: "fluent beat clipart 7–3 (2 ties)",
    the pair with the most duels first."""
    records: dict[tuple[str, str], list[int]] = {}
    for p in pairs:
        if p.member_a == p.member_b:
            continue
        first, second = sorted((p.member_a, p.member_b))
        counts = records.setdefault((first, second), [0, 0, 0])  # first won, second won, ties
        if p.choice == "tie":
            counts[2] += 1
        else:
            counts[0 if p.winner == first else 1] += 1
    lines = []
    for (first, second), (w1, w2, t) in sorted(records.items(), key=lambda kv: -sum(kv[1])):
        (top, w_top), (other, w_other) = sorted(((first, w1), (second, w2)),
                                                key=lambda x: -x[1])
        verb = "beat" if w_top > w_other else "and"
        score = f"{w_top}–{w_other}" + (f" ({t} tie{'s' if t != 1 else ''})" if t else "")
        lines.append(f"{top} {verb} {other}{' drew' if verb == 'and' else ''} {score}")
    return lines


class DuelBoard:
    """The head-to-head board from duel votes (`bot.leaderboard.LeaderboardSource`)."""

    method = ("head to head: Bradley–Terry rating from anonymous duels "
              "(a tie is half a win each), with its 95% interval")

    def __init__(self, db: Database, rounds: int = 200) -> None:
        self.db = db
        self.rounds = rounds

    async def pairs(self, guild_id: int | None) -> list[DuelPair]:
        from db.duels import duel_pairs

        return await duel_pairs(self.db, guild_id)

    async def standings(self, guild_id: int | None) -> list[DuelRow]:
        pairs = await self.pairs(guild_id)
        # A few hundred small refits must not stall the event loop.
        return await asyncio.to_thread(head_to_head_rows, pairs, rounds=self.rounds)

    def chart_png(self, standings: Sequence[DuelRow]) -> bytes | None:
        return chart_png(standings, "Head to head (duels)") if standings else None

"""The leaderboard: a Bradley–Terry fit over vote pairs, with bootstrap 95% intervals.

Bradley–Terry says member i's coloring beats member j's with probability
sigmoid(θ_i − θ_j). We fit θ by maximum likelihood (Newton's method on the logistic
log-likelihood — the same fit Chatbot Arena does with logistic regression), with a
tiny Gaussian prior so a member that never lost still gets a finite rating, and show
ratings on the Elo scale (400 points = 10:1 odds, mean 1000).

Intervals: refit on bootstrap resamples of the *votes* (the pairs of one vote travel
together) and take the 2.5/97.5 percentiles, as Chatbot Arena does with battles. A
member's rank is 1 + the number of members that are better beyond doubt (whose lower
bound is above its upper bound), so two members whose intervals overlap can share a
rank.

numpy and Pillow only, no torch: the bot's `/leaderboard` calls `leaderboard_rows`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.votes import Preference, PreferenceSet, load_preferences

ELO_SCALE = 400.0 / math.log(10.0)  # θ (natural log-odds) -> Elo points
ELO_BASE = 1000.0


@dataclass
class LeaderboardRow:
    rank: int  # 1 + members better beyond doubt (intervals do not overlap)
    position: int  # 1, 2, 3 ... by rating, no sharing
    member: str
    rating: float  # Elo scale, mean 1000
    lower: float  # bootstrap 2.5 % percentile
    upper: float  # bootstrap 97.5 % percentile
    wins: int  # pairs won
    games: int  # pairs played
    emoji: str = ""

    @property
    def win_rate(self) -> float:
        return self.wins / self.games if self.games else 0.0

    # The bot's `/leaderboard` reads rows as `bot.leaderboard.Standing`s: member, detail.
    @property
    def detail(self) -> str:
        return (
            f"{self.rating:.0f} ({self.lower:.0f}–{self.upper:.0f}, 95%) · "
            f"won {self.wins} of {self.games} pairs"
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["win_rate"] = round(self.win_rate, 4)
        for k in ("rating", "lower", "upper"):
            d[k] = round(d[k], 1)
        return d


def fit_bradley_terry(
    winners: np.ndarray,
    losers: np.ndarray,
    n_players: int,
    weights: np.ndarray | None = None,
    *,
    prior: float = 1e-3,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray:
    """Maximum-likelihood Bradley–Terry strengths θ (natural log-odds, mean 0).

    `winners[k]` beat `losers[k]` (player indices), with optional per-pair `weights`.
    `prior` is the precision of a N(0, 1/prior) prior on each θ: it only matters for
    players who never lost or never won (whose ML estimate is infinite). Newton's method
    on the (concave) log-likelihood; a handful of steps for a dozen players.
    """
    n = n_players
    w = np.ones(len(winners)) if weights is None else np.asarray(weights, dtype=float)
    wins = np.zeros((n, n))
    np.add.at(wins, (np.asarray(winners), np.asarray(losers)), w)
    games = wins + wins.T  # N_ij: pairs between i and j, either way
    theta = np.zeros(n)
    for _ in range(max_iter):
        diff = theta[:, None] - theta[None, :]
        p = 1.0 / (1.0 + np.exp(-diff))  # p_ij = P(i beats j)
        grad = (wins - games * p).sum(axis=1) - prior * theta
        curv = games * p * (1.0 - p)
        hess = curv - np.diag(curv.sum(axis=1) + prior)
        step = np.linalg.solve(hess, -grad)
        theta = theta + step
        if np.max(np.abs(step)) < tol:
            break
    return theta - theta.mean()


def bootstrap_bradley_terry(
    winners: np.ndarray,
    losers: np.ndarray,
    groups: np.ndarray,
    n_players: int,
    *,
    rounds: int = 200,
    seed: int = 0,
    prior: float = 1e-3,
) -> np.ndarray:
    """(rounds, n_players) θ refit on resamples of the groups (votes), with replacement."""
    rng = np.random.default_rng(seed)
    _, group_idx = np.unique(groups, return_inverse=True)
    n_groups = int(group_idx.max()) + 1 if len(group_idx) else 0
    out = np.zeros((rounds, n_players))
    for r in range(rounds):
        # Each group's multiplicity in this resample; its pairs carry that weight.
        mult = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups))
        out[r] = fit_bradley_terry(winners, losers, n_players, weights=mult[group_idx], prior=prior)
    return out


def to_elo(theta: np.ndarray) -> np.ndarray:
    return ELO_BASE + ELO_SCALE * (theta - np.mean(theta, axis=-1, keepdims=True))


def leaderboard(
    prefs: PreferenceSet | Sequence[Preference],
    *,
    rounds: int = 200,
    seed: int = 0,
    emojis: dict[str, str] | None = None,
) -> list[LeaderboardRow]:
    """Ranked rows (best first) with Elo ratings and bootstrap 95% intervals."""
    pairs = prefs.pairs if isinstance(prefs, PreferenceSet) else list(prefs)
    if not pairs:
        return []
    players = sorted({p.winner for p in pairs} | {p.loser for p in pairs})
    index = {name: i for i, name in enumerate(players)}
    winners = np.array([index[p.winner] for p in pairs])
    losers = np.array([index[p.loser] for p in pairs])
    groups = np.array([p.group for p in pairs])
    n = len(players)

    rating = to_elo(fit_bradley_terry(winners, losers, n))
    if rounds > 0:
        boot = to_elo(bootstrap_bradley_terry(winners, losers, groups, n, rounds=rounds, seed=seed))
        lower, upper = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    else:
        lower, upper = rating.copy(), rating.copy()
    wins = np.bincount(winners, minlength=n)
    games = wins + np.bincount(losers, minlength=n)

    order = sorted(range(n), key=lambda i: -rating[i])
    rows = []
    for pos, i in enumerate(order, start=1):
        better = sum(1 for j in range(n) if j != i and lower[j] > upper[i])
        rows.append(
            LeaderboardRow(
                rank=1 + better,
                position=pos,
                member=players[i],
                rating=float(rating[i]),
                lower=float(lower[i]),
                upper=float(upper[i]),
                wins=int(wins[i]),
                games=int(games[i]),
                emoji=(emojis or {}).get(players[i].split("@")[0], ""),
            )
        )
    return rows


def format_table(rows: Sequence[LeaderboardRow]) -> str:
    """A plain-text table for the console (and a Discord code block)."""
    if not rows:
        return "no votes yet"
    width = max(6, *(len(r.member) for r in rows))
    lines = [f"{'rank':>4}  {'member':<{width}}  {'rating':>6}  {'95% interval':>13}  {'won':>9}"]
    for r in rows:
        interval = f"{r.lower:.0f}..{r.upper:.0f}"
        lines.append(
            f"{r.rank:>4}  {r.member:<{width}}  {r.rating:>6.0f}  {interval:>13}"
            f"  {r.wins:>4}/{r.games:<4}"
        )
    notes = shared_rank_notes(rows)
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def shared_rank_notes(rows: Sequence[LeaderboardRow]) -> list[str]:
    """One line per rank held by several rows, saying why they share it, then what a
    rank means; nothing when every rank is held once."""
    by_rank: dict[int, list[LeaderboardRow]] = {}
    for r in rows:
        by_rank.setdefault(r.rank, []).append(r)
    notes = []
    for rank, group in sorted(by_rank.items()):
        if len(group) < 2:
            continue
        names = [r.member for r in group]
        who = ", ".join(names[:-1]) + f" and {names[-1]}"
        intervals = ", ".join(f"{r.lower:.0f}..{r.upper:.0f}" for r in group)
        overlap = all(a.lower <= b.upper and b.lower <= a.upper
                      for i, a in enumerate(group) for b in group[i + 1:])
        why = (
            "their 95% intervals overlap" if overlap
            else "the same number of members is above each of them beyond doubt"
        )
        notes.append(
            f"rank {rank} is shared by {who}: {why} ({intervals}), so the votes cannot "
            "yet tell them apart; more votes narrow the intervals."
        )
    if notes:
        notes.append("(rank = 1 + the members whose whole 95% interval lies above this one's)")
    return notes


def draw_chart(rows: Sequence[LeaderboardRow], title: str = "Family leaderboard") -> Any:
    """A PNG-ready Pillow image: each member's rating as a dot with its 95% interval."""
    from PIL import Image, ImageDraw, ImageFont

    row_h, left, right, top, bottom = 36, 150, 40, 50, 40
    width = 720
    height = top + bottom + row_h * max(1, len(rows))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=15)
        small = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        font = small = ImageFont.load_default()
    draw.text((12, 12), title, fill="black", font=font)
    if not rows:
        draw.text((left, top + 8), "no votes yet", fill="gray", font=font)
        return img

    lo = min(r.lower for r in rows)
    hi = max(r.upper for r in rows)
    pad = max(10.0, (hi - lo) * 0.08)
    lo, hi = lo - pad, hi + pad
    plot_w = width - left - right

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    # Grid every 50 (or 100/200 for wide ranges) Elo points.
    stepv = 50 if hi - lo < 400 else (100 if hi - lo < 1000 else 200)
    g = math.ceil(lo / stepv) * stepv
    while g <= hi:
        x = x_of(g)
        draw.line([(x, top - 6), (x, height - bottom)], fill=(225, 225, 225))
        draw.text((x - 14, height - bottom + 6), f"{g:.0f}", fill="gray", font=small)
        g += stepv
    palette = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189)]
    for k, r in enumerate(rows):
        y = top + row_h * k + row_h // 2
        color = palette[k % len(palette)]
        draw.text((12, y - 9), f"{r.rank}. {r.member}", fill="black", font=font)
        draw.line([(x_of(r.lower), y), (x_of(r.upper), y)], fill=color, width=3)
        for v in (r.lower, r.upper):
            draw.line([(x_of(v), y - 6), (x_of(v), y + 6)], fill=color, width=2)
        cx = x_of(r.rating)
        draw.ellipse([cx - 6, y - 6, cx + 6, y + 6], fill=color)
        draw.text((cx + 9, y - 20), f"{r.rating:.0f}", fill="black", font=small)
    return img


def chart_png(rows: Sequence[LeaderboardRow], title: str = "Family leaderboard") -> bytes:
    buf = io.BytesIO()
    draw_chart(rows, title).save(buf, format="PNG")
    return buf.getvalue()


async def leaderboard_rows(
    db: Any,
    guild_id: int | None = None,
    *,
    rounds: int = 200,
    emojis: dict[str, str] | None = None,
    by_version: bool = False,
) -> list[LeaderboardRow]:
    """The leaderboard from the live votes in `db` (one guild, or all): ranked rows.

    What the bot's `/leaderboard` and `colorbot leaderboard` call. The fit runs in a
    thread: a few hundred small refits must not stall the event loop.
    """
    import asyncio

    prefs = await load_preferences(db, guild_id, by_version=by_version)
    return await asyncio.to_thread(leaderboard, prefs, rounds=rounds, emojis=emojis)


class BradleyTerryLeaderboard:
    """The bot's `/leaderboard` source (`bot.leaderboard.LeaderboardSource`): rows with
    their 95% interval, and a chart of them."""

    method = "Bradley–Terry rating from who beat whom on each page, with its 95% interval"

    def __init__(self, db: Any, rounds: int = 200) -> None:
        self.db = db
        self.rounds = rounds

    async def standings(self, guild_id: int | None) -> list[LeaderboardRow]:
        return await leaderboard_rows(self.db, guild_id, rounds=self.rounds)

    def chart_png(self, standings: Sequence[LeaderboardRow]) -> bytes | None:
        return chart_png(standings) if standings else None

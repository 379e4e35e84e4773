"""The leaderboards: favourite share from reaction votes, head-to-head from pairs.

**Favourite share** (the vote board, `leaderboard`). A reaction vote names the voter's
favourite among the colorings shown in one reply. The model for that is a
favourite-choice (multinomial logit, Plackett–Luce's first pick) model: member i is
picked from the shown set S with probability exp(θ_i) / Σ_{j∈S} exp(θ_j). Fitted by
maximum likelihood over each vote's own shown set (a member not shown in a reply
neither wins nor loses there), it is reported as the **favourite share**: the share of
votes a member's coloring would get if every member's coloring were shown side by
side, softmax(θ) in percent. It does not say who wins head to head: two colorings
nobody picked are never compared by a favourite vote.

**Head to head** (`head_to_head_leaderboard`, for duel votes and the judge's pairs).
Bradley–Terry says member i's coloring beats member j's with probability
sigmoid(θ_i − θ_j). We fit θ by maximum likelihood (Newton's method on the logistic
log-likelihood — the same fit Chatbot Arena does with logistic regression), with a
tiny Gaussian prior so a member that never lost still gets a finite rating, and show
ratings on the Elo scale (400 points = 10:1 odds, mean 1000).

Intervals, both boards: refit on bootstrap resamples of the *votes* (the pairs of one
vote travel together) and take the 2.5/97.5 percentiles, as Chatbot Arena does with
battles. A member's rank is 1 + the number of members that are better beyond doubt
(whose lower bound is above its upper bound), so two members whose intervals overlap
can share a rank.

numpy and Pillow only, no torch: the bot's `/leaderboard` calls `leaderboard_rows`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from training.votes import Preference, PreferenceSet, load_preferences

if TYPE_CHECKING:
    from PIL import Image

    from db import Database

ELO_SCALE = 400.0 / math.log(10.0)  # θ (natural log-odds) -> Elo points
ELO_BASE = 1000.0
FAVOURITE_SHARE = "favourite share"  # LeaderboardRow.unit of the vote board
ELO = "elo"  # LeaderboardRow.unit of head-to-head boards
# What each number means, for /leaderboard, the console and the README.
MEANINGS = {
    FAVOURITE_SHARE: "favourite share: the share of votes a member's coloring would get "
    "as the favourite if every member's coloring of a page were shown side by side "
    "(a favourite-choice model fitted to each vote's own set of colorings shown)",
    ELO: "head-to-head rating (Elo scale: 400 points = 10:1 odds that one member's "
    "coloring is preferred over the other's)",
}


@dataclass
class LeaderboardRow:
    rank: int  # 1 + members better beyond doubt (intervals do not overlap)
    position: int  # 1, 2, 3 ... by rating, no sharing
    member: str
    rating: float  # Elo scale, mean 1000
    lower: float  # bootstrap 2.5 % percentile
    upper: float  # bootstrap 97.5 % percentile
    wins: int  # pairs won (favourite share: votes as the favourite)
    games: int  # pairs played (favourite share: votes where it was shown)
    emoji: str = ""
    unit: str = ELO  # ELO: rating in Elo points; FAVOURITE_SHARE: rating in percent

    @property
    def win_rate(self) -> float:
        return self.wins / self.games if self.games else 0.0

    # The bot's `/leaderboard` reads rows as `bot.leaderboard.Standing`s: member, detail.
    @property
    def detail(self) -> str:
        if self.unit == FAVOURITE_SHARE:
            return (
                f"{self.rating:.0f}% favourite share ({self.lower:.0f}–{self.upper:.0f}%, "
                f"95%) · picked in {self.wins} of {self.games} votes"
            )
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
    return np.asarray(theta - theta.mean())


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
    return np.asarray(ELO_BASE + ELO_SCALE * (theta - np.mean(theta, axis=-1, keepdims=True)))


def fit_favourite_choice(
    chosen: np.ndarray,
    shown: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    prior: float = 1e-3,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray:
    """Maximum-likelihood favourite-choice strengths θ (mean 0).

    Vote v picked player `chosen[v]` out of the players with `shown[v]` True ((V, n)
    bool): P = exp(θ_chosen) / Σ_{shown} exp(θ_j). `weights` per vote (bootstrap
    multiplicities); `prior` the precision of a N(0, 1/prior) prior on each θ (finite
    strengths for a player never or always picked). Newton's method on the concave
    log-likelihood.
    """
    shown = np.asarray(shown, dtype=bool)
    v, n = shown.shape
    w = np.ones(v) if weights is None else np.asarray(weights, dtype=float)
    picks = np.bincount(np.asarray(chosen), weights=w, minlength=n)
    theta = np.zeros(n)
    for _ in range(max_iter):
        logits = np.where(shown, theta[None, :], -np.inf)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)  # (V, n): each vote's choice probabilities
        wp = p * w[:, None]
        grad = picks - wp.sum(axis=0) - prior * theta
        hess = -(np.diag(wp.sum(axis=0)) - p.T @ wp) - prior * np.eye(n)
        step = np.linalg.solve(hess, -grad)
        theta = theta + step
        if np.max(np.abs(step)) < tol:
            break
    return np.asarray(theta - theta.mean())


def favourite_share(theta: np.ndarray) -> np.ndarray:
    """θ (..., n) -> the share (percent) of votes each player would get as the favourite
    with every player shown."""
    e = np.exp(theta - np.max(theta, axis=-1, keepdims=True))
    return np.asarray(100.0 * e / e.sum(axis=-1, keepdims=True))


def votes_from_pairs(pairs: Sequence[Preference]) -> tuple[list[str], np.ndarray, np.ndarray,
                                                            np.ndarray]:
    """(players, chosen (V,), shown (V, n) bool, group (V,)) from reaction-vote pairs:
    the pairs of one vote (one group) share their winner, and their losers are the
    other colorings that reply showed."""
    players = sorted({p.winner for p in pairs} | {p.loser for p in pairs})
    index = {name: i for i, name in enumerate(players)}
    votes: dict[int, tuple[int, set[int]]] = {}
    for p in pairs:
        won, seen = votes.setdefault(p.group, (index[p.winner], {index[p.winner]}))
        seen.add(index[p.loser])
    groups = np.array(list(votes), dtype=np.int64)
    chosen = np.array([votes[g][0] for g in groups], dtype=np.int64)
    shown = np.zeros((len(groups), len(players)), dtype=bool)
    for k, g in enumerate(groups):
        shown[k, list(votes[g][1])] = True
    return players, chosen, shown, groups


def leaderboard(
    prefs: PreferenceSet | Sequence[Preference],
    *,
    rounds: int = 200,
    seed: int = 0,
    emojis: dict[str, str] | None = None,
) -> list[LeaderboardRow]:
    """The vote board: ranked rows (best first) by favourite share, in percent, with
    bootstrap 95% intervals (votes resampled). `prefs` are reaction-vote pairs
    (`training.votes`): each group is one vote."""
    pairs = prefs.pairs if isinstance(prefs, PreferenceSet) else list(prefs)
    if not pairs:
        return []
    players, chosen, shown, _ = votes_from_pairs(pairs)
    n = len(players)
    share = favourite_share(fit_favourite_choice(chosen, shown))
    if rounds > 0:
        rng = np.random.default_rng(seed)
        boot = np.zeros((rounds, n))
        for r in range(rounds):
            mult = rng.multinomial(len(chosen), np.full(len(chosen), 1.0 / len(chosen)))
            boot[r] = favourite_share(fit_favourite_choice(chosen, shown, weights=mult))
        lower, upper = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    else:
        lower, upper = share.copy(), share.copy()
    wins = np.bincount(chosen, minlength=n)
    games = shown.sum(axis=0)
    return _ranked(players, share, lower, upper, wins, games, emojis, FAVOURITE_SHARE)


def head_to_head_leaderboard(
    prefs: PreferenceSet | Sequence[Preference],
    *,
    rounds: int = 200,
    seed: int = 0,
    emojis: dict[str, str] | None = None,
) -> list[LeaderboardRow]:
    """A head-to-head board: Bradley–Terry over the pairs (duels, or the judge's
    comparisons), Elo ratings with bootstrap 95% intervals (groups resampled)."""
    pairs = prefs.pairs if isinstance(prefs, PreferenceSet) else list(prefs)
    if not pairs:
        return []
    players = sorted({p.winner for p in pairs} | {p.loser for p in pairs})
    index = {name: i for i, name in enumerate(players)}
    return bradley_terry_rows(
        players,
        np.array([index[p.winner] for p in pairs]),
        np.array([index[p.loser] for p in pairs]),
        np.array([p.group for p in pairs]),
        rounds=rounds, seed=seed, emojis=emojis,
    )


def bradley_terry_rows(
    players: Sequence[str],
    winners: np.ndarray,
    losers: np.ndarray,
    groups: np.ndarray,
    *,
    wins: np.ndarray | None = None,
    games: np.ndarray | None = None,
    rounds: int = 200,
    seed: int = 0,
    emojis: dict[str, str] | None = None,
) -> list[LeaderboardRow]:
    """Ranked head-to-head rows (best first) from pairs of player indices (`winners[k]`
    beat `losers[k]`; the pairs of one group are resampled together): Elo ratings with
    bootstrap 95% intervals. `wins` and `games` count pairs won and played unless given
    (the duel board counts duels)."""
    n = len(players)
    rating = to_elo(fit_bradley_terry(winners, losers, n))
    if rounds > 0:
        boot = to_elo(bootstrap_bradley_terry(winners, losers, groups, n, rounds=rounds, seed=seed))
        lower, upper = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    else:
        lower, upper = rating.copy(), rating.copy()
    if wins is None:
        wins = np.bincount(winners, minlength=n)
    if games is None:
        games = np.bincount(winners, minlength=n) + np.bincount(losers, minlength=n)
    return _ranked(players, rating, lower, upper, wins, games, emojis, ELO)


def _ranked(
    players: Sequence[str],
    rating: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    wins: np.ndarray,
    games: np.ndarray,
    emojis: dict[str, str] | None,
    unit: str,
) -> list[LeaderboardRow]:
    n = len(players)
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
                unit=unit,
            )
        )
    return rows


def format_table(rows: Sequence[LeaderboardRow]) -> str:
    """A plain-text table for the console (and a Discord code block)."""
    if not rows:
        return "no votes yet"
    width = max(6, *(len(r.member) for r in rows))
    share = rows[0].unit == FAVOURITE_SHARE
    value, won = ("share %", "picked") if share else ("rating", "won")
    lines = [f"{'rank':>4}  {'member':<{width}}  {value:>7}  {'95% interval':>13}  {won:>9}"]
    for r in rows:
        interval = f"{r.lower:.0f}..{r.upper:.0f}"
        lines.append(
            f"{r.rank:>4}  {r.member:<{width}}  {r.rating:>7.0f}  {interval:>13}"
            f"  {r.wins:>4}/{r.games:<4}"
        )
    lines.append(f"({MEANINGS[rows[0].unit]})")
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


def draw_chart(rows: Sequence[LeaderboardRow], title: str = "Family leaderboard"
               ) -> Image.Image:
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

    share = rows[0].unit == FAVOURITE_SHARE
    lo = min(r.lower for r in rows)
    hi = max(r.upper for r in rows)
    pad = max(2.0 if share else 10.0, (hi - lo) * 0.08)
    lo, hi = lo - pad, hi + pad
    if share:
        lo, hi = max(0.0, lo), min(100.0, hi)
    plot_w = width - left - right

    def x_of(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    if share:
        stepv = 5 if hi - lo < 40 else 10
    else:
        # Grid every 50 (or 100/200 for wide ranges) Elo points.
        stepv = 50 if hi - lo < 400 else (100 if hi - lo < 1000 else 200)
    g = math.ceil(lo / stepv) * stepv
    while g <= hi:
        x = x_of(g)
        draw.line([(x, top - 6), (x, height - bottom)], fill=(225, 225, 225))
        label = f"{g:.0f}%" if share else f"{g:.0f}"
        draw.text((x - 14, height - bottom + 6), label, fill="gray", font=small)
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
        value = f"{r.rating:.0f}%" if share else f"{r.rating:.0f}"
        draw.text((cx + 9, y - 20), value, fill="black", font=small)
    return img


def chart_png(rows: Sequence[LeaderboardRow], title: str = "Family leaderboard") -> bytes:
    buf = io.BytesIO()
    draw_chart(rows, title).save(buf, format="PNG")
    return buf.getvalue()


async def leaderboard_rows(
    db: Database,
    guild_id: int | None = None,
    *,
    rounds: int = 200,
    emojis: dict[str, str] | None = None,
    by_version: bool = False,
) -> list[LeaderboardRow]:
    """The vote board (favourite share) from the live votes in `db` (one guild, or
    all): ranked rows.

    What the bot's `/leaderboard` and `colorbot leaderboard` call. The fit runs in a
    thread: a few hundred small refits must not stall the event loop.
    """
    import asyncio

    prefs = await load_preferences(db, guild_id, by_version=by_version)
    return await asyncio.to_thread(leaderboard, prefs, rounds=rounds, emojis=emojis)


def rows_from_dicts(rows: Sequence[dict[str, Any]]) -> list[LeaderboardRow]:
    """Rows back from `LeaderboardRow.to_dict()` (as stored with a training run)."""
    names = {f.name for f in fields(LeaderboardRow)}
    return [LeaderboardRow(**{k: v for k, v in r.items() if k in names}) for r in rows]


async def latest_judge_board(db: Database) -> tuple[list[LeaderboardRow], dict[str, Any]] | None:
    """The judge's board stored by the latest retrain cycle (its training run's
    metrics, "judge_board"), with what it says about itself; None before any cycle.

    The run is found through the member versions a cycle records (each names its
    training run), so no torch and no extra query are needed.
    """
    versions = await db.member_versions()
    run_ids = sorted({v.training_run_id for v in versions if v.training_run_id}, reverse=True)
    for run_id in run_ids[:5]:
        run = await db.get_training_run(run_id)
        board = (run.metrics or {}).get("judge_board")
        if run.status == "done" and board and board.get("rows"):
            about = {k: v for k, v in board.items() if k != "rows"}
            about["training_run_id"] = run_id
            return rows_from_dicts(board["rows"]), about
    return None


class VoteLeaderboard:
    """The bot's `/leaderboard` source (`bot.leaderboard.LeaderboardSource`): the vote
    board (favourite share) with 95% intervals and a chart, and the judge's board as
    the latest retrain cycle stored it."""

    method = "favourite share from your votes, with its 95% interval"
    meaning = MEANINGS[FAVOURITE_SHARE]

    def __init__(self, db: Database, rounds: int = 200) -> None:
        self.db = db
        self.rounds = rounds

    async def standings(self, guild_id: int | None) -> list[LeaderboardRow]:
        return await leaderboard_rows(self.db, guild_id, rounds=self.rounds)

    async def judge_standings(self, guild_id: int | None) -> tuple[list[LeaderboardRow], str]:
        """The judge's head-to-head board and a line saying what it is; ([], "") when
        no cycle has stored one. The judge learns from every guild's votes, so the
        board is the same in every guild."""
        found = await latest_judge_board(self.db)
        if found is None:
            return [], ""
        rows, about = found
        pages = about.get("pages")
        accuracy = about.get("judge_heldout_accuracy")
        said = (f"the judge (trained on the votes; it guessed {accuracy:.0%} of held-out "
                "votes right) compares every two colorings of each voted page"
                if accuracy is not None else
                "the judge compares every two colorings of each voted page")
        if pages:
            said += f" ({pages} pages)"
        return rows, f"{said}; {MEANINGS[ELO]}"

    def chart_png(self, standings: Sequence[LeaderboardRow]) -> bytes | None:
        return chart_png(standings) if standings else None


# The name `bot/app.py` builds its default source with.
BradleyTerryLeaderboard = VoteLeaderboard

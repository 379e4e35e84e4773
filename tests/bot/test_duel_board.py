"""The head-to-head board from duel votes: ties, intervals, ranks, and 500 simulated
duel votes (a hidden taste, voters from training.simulate, votes through db/duels.py)
that recover the taste's head-to-head order."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.duel_board import DuelBoard, head_to_head_records, head_to_head_rows
from db.duels import DuelPair, cast_duel_vote, create_duel, duel_pairs
from db.results import NewColoring


def pair(a: str, b: str, choice: str, k: int = 0) -> DuelPair:
    return DuelPair(k, k, 100 + k, 1, k, a, 1, b, 1, choice,  # type: ignore[arg-type]
                    datetime(2026, 12, 3, tzinfo=UTC))


def test_decided_votes_rank_the_winner_first_and_ties_count_half():
    votes = [pair("x", "y", "a", k) for k in range(6)] + [pair("x", "y", "b", 6)]
    votes += [pair("z", "y", "tie", 7 + k) for k in range(4)] + [pair("z", "y", "b", 11)]
    rows = head_to_head_rows(votes, rounds=50)
    assert [r.member for r in rows] == ["x", "y", "z"]
    x, y, z = rows
    assert (x.wins, x.ties, x.losses, x.games) == (6, 0, 1, 7)
    assert (y.wins, y.ties, y.losses, y.games) == (2, 4, 6, 12)
    assert (z.wins, z.ties, z.losses, z.games) == (0, 4, 1, 5)
    assert all(r.lower <= r.rating <= r.upper for r in rows)
    assert "won 6, tied 0, lost 1 of 7 duels" in x.detail and "95%" in x.detail
    assert head_to_head_records(votes) == ["x beat y 6–1", "y beat z 1–0 (4 ties)"]


def test_only_ties_put_two_members_level():
    rows = head_to_head_rows([pair("x", "y", "tie", k) for k in range(5)], rounds=20)
    assert rows[0].rating == pytest.approx(rows[1].rating, abs=0.5)
    assert head_to_head_records([pair("x", "y", "tie", 0)]) == ["x and y drew 0–0 (1 tie)"]


def test_overlapping_intervals_share_a_rank_and_clear_ones_do_not():
    close = [pair("x", "y", "a" if k % 2 else "b", k) for k in range(10)]
    assert {r.rank for r in head_to_head_rows(close, rounds=100)} == {1}
    clear = [pair("x", "y", "a", k) for k in range(40)]
    assert [r.rank for r in head_to_head_rows(clear, rounds=100)] == [1, 2]


def test_no_votes_no_rows_and_same_member_duels_are_left_out():
    assert head_to_head_rows([]) == []
    assert head_to_head_rows([pair("x", "x", "a")]) == []


# --- 500 simulated duel votes -------------------------------------------------------

# Four painters of a page, each with its own colors (LAB hue in degrees, chroma), a
# little different on every page.
PAINTERS = {"sunny": (60.0, 55.0), "pastel": (60.0, 22.0), "gray": (200.0, 4.0),
            "ocean": (235.0, 45.0)}
EMOJI = {"sunny": "🌞", "pastel": "🌸", "gray": "🐘", "ocean": "🌊"}
# Close enough in the voters' eyes to call it a tie.
TIE_BAND = 0.05


def paint(page: Image.Image, hue: float, chroma: float, rng: np.random.Generator
          ) -> Image.Image:
    """The page's paper in one color near (hue, chroma), its lines black."""
    from skimage import color as skcolor

    h = math.radians(hue + rng.normal(0.0, 25.0))
    c = chroma * math.exp(rng.normal(0.0, 0.3))
    rgb = skcolor.lab2rgb(np.array([[[78.0, c * math.cos(h), c * math.sin(h)]]]))[0, 0]
    lines = np.asarray(page.convert("L")) <= 128
    out = np.where(lines[..., None], 0, np.round(rgb * 255)).astype(np.uint8)
    return Image.fromarray(out, "RGB")


def simulated_duels(feats: np.ndarray, taste, seed: int, n_votes: int = 500
                    ) -> list[DuelPair]:
    """`n_votes` duel votes: random pages, two random painters each, two voters per
    duel (each with their own weights around the taste, noisy, a tie when the two
    look alike to them)."""
    from training.simulate import make_voters

    rng = np.random.default_rng(seed)
    voters = make_voters(taste, 40, [1], seed=seed)
    names = list(PAINTERS)
    out: list[DuelPair] = []
    duel = 0
    while len(out) < n_votes:
        duel += 1
        k = int(rng.integers(len(feats)))
        i, j = (int(x) for x in rng.choice(len(names), size=2, replace=False))
        for v in rng.choice(len(voters), size=2, replace=False):
            voter = voters[int(v)]
            shown = feats[k, [i, j]]
            seen = shown @ voter.weights
            if abs(seen[0] - seen[1]) < TIE_BAND:
                choice = "tie"
            else:
                choice = "ab"[voter.choose(shown, taste.temperature, rng)]
            out.append(DuelPair(len(out), duel, voter.user_id, 1, k, names[i], 1, names[j], 1,
                                choice, datetime(2026, 12, 3, tzinfo=UTC)))  # type: ignore[arg-type]
    return out[:n_votes]


def test_500_duel_votes_recover_the_tastes_head_to_head_order():
    from training.simulate import HiddenTaste, synthetic_page, taste_features

    taste = HiddenTaste(warmth=1.0, saturation=0.5, flatness=0.3, temperature=0.5)
    rng = np.random.default_rng(0)
    names = list(PAINTERS)
    feats = np.array([  # (pages, painters, features)
        [taste_features(paint(synthetic_page(k), *PAINTERS[m], rng)) for m in names]
        for k in range(100)
    ])
    # The taste's head-to-head order: P(i beats j) over these pages, without any
    # voter's own jitter; i is above j when that is over one half.
    score = feats @ taste.weights() / taste.temperature  # (pages, painters)
    p_beats = (1.0 / (1.0 + np.exp(score[:, None, :] - score[:, :, None]))).mean(axis=0)
    wins = (p_beats > 0.5).sum(axis=1)
    assert sorted(wins) == [0, 1, 2, 3]  # a strict order, so the check means something
    taste_order = [names[i] for i in np.argsort(-wins)]
    closest = min(abs(p_beats[i, j] - 0.5) for i in range(4) for j in range(4) if i != j)
    assert closest < 0.2  # not a walkover: some pair is won only ~60-70% of the time

    for seed in (0, 1, 2):
        votes = simulated_duels(feats, taste, seed)
        assert len(votes) == 500 and any(v.choice == "tie" for v in votes)
        rows = head_to_head_rows(votes, rounds=200, seed=seed)
        assert [r.member for r in rows] == taste_order, seed
        # Every pair the board tells apart (intervals apart) is in the taste's order.
        for upper in rows:
            for lower in rows:
                if upper.lower > lower.upper:
                    assert taste_order.index(upper.member) < taste_order.index(lower.member)
        assert rows[0].rank == 1 and rows[-1].rank > 1


async def test_simulated_duel_votes_go_through_the_database_unchanged(tmp_path: Path):
    # The board reads exactly what voting wrote: a few simulated votes stored through
    # db/duels.py come back as the same pairs and give the same board.
    from db import Database

    votes = [pair("sunny", "ocean", "a", k) for k in range(3)] + [
        pair("ocean", "gray", "tie", 3), pair("gray", "sunny", "b", 4)]
    db = Database(f"sqlite:///{tmp_path / 'duels.sqlite3'}")
    try:
        await db.upgrade()
        recorded = await db.record_page(b"page", guild_id=1, source="simulated")
        rows = await db.record_colorings(recorded.page.id, [
            NewColoring(member=m, version=1, emoji=EMOJI[m], image=m.encode())
            for m in PAINTERS])
        coloring = {m: r.id for m, r in zip(PAINTERS, rows, strict=True)}
        for v in votes:
            duel = await create_duel(db, recorded.page.id, coloring[v.member_a],
                                     coloring[v.member_b], guild_id=1)
            await cast_duel_vote(db, duel.id, v.user_id, v.choice, source="simulated")
        stored = await duel_pairs(db, 1)
        assert [(p.member_a, p.member_b, p.choice) for p in stored] == [
            (v.member_a, v.member_b, v.choice) for v in votes]
        board = await DuelBoard(db, rounds=50).standings(1)
        assert [(r.member, r.wins, r.ties, r.games) for r in board] == [
            (r.member, r.wins, r.ties, r.games) for r in head_to_head_rows(votes, rounds=50)]
    finally:
        await db.close()

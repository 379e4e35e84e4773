"""Favourite-choice and Bradley–Terry fits, bootstrap intervals, the table and the chart
(numpy only)."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from training.leaderboard import (
    ELO_SCALE,
    FAVOURITE_SHARE,
    bootstrap_bradley_terry,
    chart_png,
    favourite_share,
    fit_bradley_terry,
    fit_favourite_choice,
    format_table,
    head_to_head_leaderboard,
    leaderboard,
)
from training.votes import Preference


def _sample_pairs(theta: np.ndarray, n_pairs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = len(theta)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, n, n_pairs)) % n  # j != i
    p = 1.0 / (1.0 + np.exp(-(theta[i] - theta[j])))
    i_won = rng.random(n_pairs) < p
    return np.where(i_won, i, j), np.where(i_won, j, i)


def test_recovers_order_and_values_of_known_ratings():
    theta = np.array([0.9, -0.4, 0.3, -1.1, 0.0, 0.6])
    winners, losers = _sample_pairs(theta, 6000)
    fit = fit_bradley_terry(winners, losers, len(theta))
    assert list(np.argsort(-fit)) == list(np.argsort(-theta))
    assert np.max(np.abs(fit - (theta - theta.mean()))) < 0.12


def test_bootstrap_interval_covers_truth_and_shrinks_with_data():
    theta = np.array([0.5, 0.0, -0.5])
    widths = []
    for n_pairs in (300, 3000):
        won, lost = _sample_pairs(theta, n_pairs, seed=1)
        boot = bootstrap_bradley_terry(won, lost, np.arange(n_pairs), 3, rounds=100, seed=0)
        lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
        assert np.all(lo <= theta - theta.mean() + 1e-9) and np.all(theta - theta.mean() <= hi)
        widths.append(np.mean(hi - lo))
    assert widths[1] < widths[0] * 0.5


def test_unbeaten_player_gets_a_finite_top_rating():
    winners = np.array([0, 0, 0, 1, 1, 2])
    losers = np.array([1, 2, 1, 2, 2, 1])
    fit = fit_bradley_terry(winners, losers, 3)
    assert np.all(np.isfinite(fit)) and fit[0] == fit.max()


def _prefs_from(theta: dict[str, float], n_votes: int, seed: int = 0) -> list[Preference]:
    rng = np.random.default_rng(seed)
    names = list(theta)
    out = []
    for v in range(n_votes):
        # One vote picks the best of all colorings of a page (Plackett–Luce first choice).
        s = np.array([theta[m] for m in names])
        p = np.exp(s) / np.exp(s).sum()
        win = names[rng.choice(len(names), p=p)]
        for other in names:
            if other != win:
                out.append(Preference(v, win, other, 0, 0, group=v, guild_id=v % 2))
    return out


def test_head_to_head_rows_ranked_with_intervals_and_shared_ranks():
    theta = {"artworks": 1.0, "openmoji": 0.5, "fluent": 0.45, "clipart": -1.0}
    rows = head_to_head_leaderboard(_prefs_from(theta, 800), rounds=60,
                                    emojis={"artworks": "🎨"})
    assert [r.member for r in rows][0] == "artworks" and rows[-1].member == "clipart"
    assert rows[0].emoji == "🎨" and rows[0].rank == 1
    for r in rows:
        assert r.lower <= r.rating <= r.upper
    # openmoji and fluent are too close to tell apart: they share a rank.
    middle = {r.member: r.rank for r in rows}
    assert middle["openmoji"] == middle["fluent"] == 2
    assert rows[-1].rank == 4
    # Elo scale: mean 1000, differences 400/ln(10) per unit of θ.
    assert abs(np.mean([r.rating for r in rows]) - 1000) < 1e-6
    assert abs((rows[0].rating - rows[-1].rating) / ELO_SCALE - 2.0) < 0.4
    text = format_table(rows)
    assert "artworks" in text.splitlines()[1]


def _votes_on_subsets(theta: np.ndarray, n_votes: int, seed: int = 0):
    """Favourite votes where each reply shows a random 2..n of the players."""
    rng = np.random.default_rng(seed)
    n = len(theta)
    shown = np.zeros((n_votes, n), dtype=bool)
    chosen = np.zeros(n_votes, dtype=int)
    for v in range(n_votes):
        k = rng.integers(2, n + 1)
        s = rng.choice(n, size=k, replace=False)
        shown[v, s] = True
        p = np.exp(theta[s]) / np.exp(theta[s]).sum()
        chosen[v] = s[rng.choice(k, p=p)]
    return chosen, shown


def test_favourite_choice_recovers_strengths_from_votes_on_different_shown_sets():
    theta = np.array([1.0, 0.2, -0.3, -0.9])
    chosen, shown = _votes_on_subsets(theta, 5000)
    fit = fit_favourite_choice(chosen, shown)
    assert list(np.argsort(-fit)) == [0, 1, 2, 3]
    assert np.max(np.abs(fit - (theta - theta.mean()))) < 0.12
    share = favourite_share(fit)
    assert abs(share.sum() - 100.0) < 1e-9
    assert np.max(np.abs(share - favourite_share(theta))) < 2.5  # percent


def test_favourite_share_board_counts_picks_among_the_colorings_shown():
    theta = {"artworks": 1.0, "openmoji": 0.5, "fluent": 0.45, "clipart": -1.0}
    rows = leaderboard(_prefs_from(theta, 800), rounds=60, emojis={"artworks": "🎨"})
    assert [r.member for r in rows][0] == "artworks" and rows[-1].member == "clipart"
    assert all(r.unit == FAVOURITE_SHARE for r in rows)
    assert abs(sum(r.rating for r in rows) - 100.0) < 1e-6  # shares, in percent
    truth = dict(zip(theta, favourite_share(np.array(list(theta.values()))), strict=True))
    for r in rows:
        assert r.lower <= r.rating <= r.upper
        assert r.lower - 1 <= truth[r.member] <= r.upper + 1
        assert r.games == 800  # every vote showed every member
    assert sum(r.wins for r in rows) == 800
    assert {r.member: r.rank for r in rows}["fluent"] == 2  # overlaps openmoji
    assert "% favourite share" in rows[0].detail and "picked in" in rows[0].detail
    assert "favourite share: the share of votes" in format_table(rows)


def test_favourite_share_is_not_head_to_head():
    # "swingy" is the favourite on a third of the pages and last elsewhere; "steady" is
    # everybody's second choice and nobody's favourite. Favourite share ranks swingy
    # above steady; head to head (all pairs known) would say the opposite.
    prefs = []
    for v in range(300):
        favourite = "top" if v % 3 else "swingy"
        others = [m for m in ("top", "steady", "swingy") if m != favourite]
        prefs += [Preference(v, favourite, o, 0, 0, group=v) for o in others]
    order = [r.member for r in leaderboard(prefs, rounds=0)]
    assert order == ["top", "swingy", "steady"]


def test_empty_leaderboard_and_chart():
    assert leaderboard([]) == []
    assert format_table([]) == "no votes yet"
    img = Image.open(io.BytesIO(chart_png([])))
    assert img.format == "PNG"


def test_chart_is_a_png_with_one_row_per_member():
    rows = leaderboard(_prefs_from({"a": 0.5, "b": 0.0, "c": -0.5}, 200), rounds=20)
    img = Image.open(io.BytesIO(chart_png(rows)))
    assert img.format == "PNG" and img.width == 720
    small = Image.open(io.BytesIO(chart_png(rows[:1])))
    assert img.height > small.height
    # Not blank: the dots are drawn in color.
    arr = np.asarray(img.convert("RGB")).astype(int)
    assert (np.abs(arr[..., 0] - arr[..., 2]) > 100).sum() > 50


def test_leaderboard_module_does_not_import_torch():
    import subprocess

    code = "import sys, training.leaderboard, training.votes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("guild", [0, 1])
def test_per_guild_preferences_feed_the_board(guild):
    prefs = [p for p in _prefs_from({"a": 1.0, "b": -1.0}, 200) if p.guild_id == guild]
    rows = leaderboard(prefs, rounds=10)
    assert rows[0].member == "a" and rows[0].games == len(prefs)

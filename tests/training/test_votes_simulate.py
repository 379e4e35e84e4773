"""Simulated voters vote through the db repository; the leaderboard finds their taste."""

from __future__ import annotations

import pytest

from db import Database
from tests.training.votes_helpers import STYLES, fake_colorize, one_thread, tiny_family  # noqa: F401
from training.leaderboard import BradleyTerryLeaderboard, leaderboard_rows
from training.simulate import HiddenTaste, pages_for_simulation, simulate_votes
from training.votes import load_preferences

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
async def db(tmp_path):
    database = Database(
        f"sqlite+aiosqlite:///{tmp_path / 'votes.sqlite3'}", store_dir=tmp_path / "store"
    )
    await database.upgrade()
    yield database
    await database.close()


async def test_simulated_votes_go_through_the_db_and_rank_the_taste(db, tmp_path):
    family = tiny_family(tmp_path / "family")
    taste = HiddenTaste(temperature=0.25)
    pages = pages_for_simulation(24, datasets_root=None, seed=3, size=48)
    report = await simulate_votes(
        db,
        family,
        pages,
        taste=taste,
        n_votes=120,
        n_voters=12,
        guilds=(1, 2),
        colorize=fake_colorize,
        move_share=0.3,
    )
    assert report.votes == 120 and report.pages == 24 and report.moved_votes > 0
    assert sum(report.taste_favourite_pages.values()) == 24
    assert max(report.taste_favourite_pages, key=report.taste_favourite_pages.get) in (
        report.taste_order[:2]
    )
    live = await db.live_votes()
    assert len(live) == 120
    assert len({(v.user_id, v.page_id) for v in live}) == 120  # one live vote per user and page

    prefs = await load_preferences(db)
    assert prefs.votes == 120 and len(prefs.pairs) == 120 * (len(STYLES) - 1)
    rows = await leaderboard_rows(db, rounds=30)
    assert [r.member for r in rows] == report.taste_order
    g1 = await leaderboard_rows(db, guild_id=1, rounds=10)
    assert sum(r.games for r in g1) < sum(r.games for r in rows)

    standings = await BradleyTerryLeaderboard(db, rounds=10).standings(None)
    assert standings[0].member == report.taste_order[0]
    assert "95%" in standings[0].detail


def _colored(page, rgb):
    """`page`'s paper painted `rgb`, its lines kept."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(page.convert("RGB")).copy()
    paper = arr.mean(axis=2) > 128
    arr[paper] = rgb
    return Image.fromarray(arr)


def test_faithful_voters_pick_the_coloring_closest_to_the_true_colors():
    import numpy as np

    from training.simulate import TASTES, make_voters, synthetic_page, taste_features

    page = synthetic_page(1, 64)
    truth = _colored(page, (40, 160, 60))  # a green picture
    near, far = _colored(page, (60, 150, 70)), _colored(page, (200, 40, 160))
    feats = np.stack([taste_features(c, truth) for c in (near, far)])
    assert feats[0, 3] > feats[1, 3]  # fidelity: minus CIEDE2000 to the truth
    assert taste_features(near)[3] == 0.0  # no truth, no fidelity
    rng = np.random.default_rng(0)
    voters = make_voters(TASTES["faithful"], 20, guilds=[1])
    picks = [v.choose(feats, None, rng) for v in voters for _ in range(5)]
    assert picks.count(0) >= 0.9 * len(picks)
    # The same two colorings with the truth swapped: the other one wins.
    swapped = np.stack([taste_features(c, far) for c in (near, far)])
    assert TASTES["faithful"].population().choice_probabilities(swapped)[1] > 0.9


def test_mixed_population_has_each_kind_of_voter_in_its_share():
    import numpy as np

    from training.simulate import FAITHFUL, TASTES, make_voters

    mixed = TASTES["mixed"]
    voters = make_voters(mixed, 50, guilds=[1, 2])
    faithful = [v for v in voters if v.weights[3] > 0 and v.weights[0] == 0]
    assert 25 <= len(faithful) <= 35  # 60 % of 50
    assert all(v.temperature == FAITHFUL.temperature for v in faithful)
    assert {v.guild_id for v in faithful} == {1, 2}
    # Two colorings: one faithful, one vivid and warm. The mix picks between them by
    # its shares, not as any single taste would.
    feats = np.array([[0.0, 0.1, 0.0, -0.1], [0.8, 0.9, 0.0, -0.6]])
    p = mixed.choice_probabilities(feats)
    assert abs(p.sum() - 1) < 1e-9 and 0.5 < p[0] < 0.7


def test_realistic_vote_counts_are_uneven_and_capped():
    import numpy as np

    from training.simulate import vote_counts

    counts = vote_counts(2000, 1200, np.random.default_rng(0), cap=5, spread="realistic")
    used = [c for c in counts if c]
    assert sum(counts) == 2000 and max(counts) == 5
    assert sum(c <= 2 for c in used) > 0.6 * len(used)  # most pages one or two votes
    # Too few pages for that: still every vote placed, none above the cap.
    few = vote_counts(2000, 450, np.random.default_rng(0), cap=5, spread="realistic")
    assert sum(few) == 2000 and max(few) == 5
    even = vote_counts(100, 30, np.random.default_rng(0), spread="even")
    assert sum(even) == 100 and max(even) == 4


async def test_faithful_simulation_needs_pages_with_truth(db, tmp_path):
    from training.simulate import TASTES

    family = tiny_family(tmp_path / "family")
    pages = pages_for_simulation(4, datasets_root=None, seed=1, size=32)
    with pytest.raises(ValueError, match="true colors"):
        await simulate_votes(db, family, pages, taste=TASTES["faithful"], n_votes=4,
                             colorize=fake_colorize)


async def test_realistic_simulation_records_truth_based_values(db, tmp_path):
    from training.simulate import TASTES, PageSource

    family = tiny_family(tmp_path / "family")
    pages = [PageSource(p.image, p.source, truth=fake_colorize([p.image])[0]["leafy"])
             for p in pages_for_simulation(30, datasets_root=None, seed=2, size=40)]
    report = await simulate_votes(db, family, pages, taste=TASTES["faithful"], n_votes=50,
                                  n_voters=12, colorize=fake_colorize, spread="realistic",
                                  max_per_page=5)
    assert report.votes == 50 and max(report.votes_per_page) <= 5
    assert len(report.page_values) == report.pages == len(report.page_sources)
    # The truth is leafy's own style: the faithful voters' favourite.
    assert max(report.taste_favourite_share, key=report.taste_favourite_share.get) == "leafy"
    assert abs(sum(report.taste_favourite_share.values()) - 1) < 1e-9

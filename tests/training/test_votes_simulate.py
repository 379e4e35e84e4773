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

"""Rate limits: the sliding window, in memory and in the database shared by every bot
process (two bot instances on one database count the same pages)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.ratelimit import RateLimiter, SharedRateLimiter
from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, page_file, start_bot, stop_bot


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "database"])
async def make_limiter(request, tmp_path):
    """A factory of limiters of each kind (the database one on a fresh SQLite file)."""
    databases = []

    async def make(limit: int, window: float, clock: Clock):
        if request.param == "memory":
            return RateLimiter(limit, window, clock=clock)
        from db import Database

        db = Database(f"sqlite:///{tmp_path / 'limits.sqlite3'}")
        databases.append(db)
        await db.upgrade()
        return SharedRateLimiter(db, limit, window, clock=clock)

    yield make
    for db in databases:
        await db.close()


async def test_allows_limit_then_refuses_with_the_wait(make_limiter):
    clock = Clock()
    limiter = await make_limiter(3, 60, clock)
    assert [await limiter.hit(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert await limiter.hit(1) == pytest.approx(50.0)  # the first hit expires at +60


async def test_window_slides(make_limiter):
    clock = Clock()
    limiter = await make_limiter(2, 60, clock)
    await limiter.hit(1)
    clock.now += 30
    await limiter.hit(1)
    clock.now += 31  # the first hit is out of the window, the second is not
    assert await limiter.hit(1) == 0.0
    assert await limiter.hit(1) == pytest.approx(29.0)


async def test_refused_requests_do_not_count(make_limiter):
    clock = Clock()
    limiter = await make_limiter(1, 10, clock)
    await limiter.hit(1)
    for _ in range(5):
        assert await limiter.hit(1) > 0
    clock.now += 10
    assert await limiter.hit(1) == 0.0


async def test_users_are_independent(make_limiter):
    limiter = await make_limiter(1, 60, Clock())
    assert await limiter.hit(1) == 0.0
    assert await limiter.hit(2) == 0.0
    assert await limiter.hit(1) > 0
    assert not hasattr(limiter, "forget")  # /forget keeps the window


async def test_the_shared_limiter_prunes_users_who_left(tmp_path):
    from db import Database
    from db.ratelimits import counted

    clock = Clock()
    db = Database(f"sqlite:///{tmp_path / 'limits.sqlite3'}")
    try:
        await db.upgrade()
        limiter = SharedRateLimiter(db, 5, 60, clock=clock)
        await limiter.hit(1)
        clock.now += 61
        await limiter.hit(2)  # a window later: user 1's hit goes
        assert await counted(db, "pages", 1) == 0
        assert await counted(db, "pages", 2) == 1
    finally:
        await db.close()


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        RateLimiter(limit=0, window=60)
    with pytest.raises(ValueError):
        SharedRateLimiter(None, limit=1, window=0)  # type: ignore[arg-type]


@E2E
async def test_two_bot_instances_on_one_database_share_the_window(world, settings, worker,
                                                                  database):
    from db import Database

    settings = dataclasses.replace(settings, rate_limit_pages=1, rate_limit_seconds=3600)
    first = make_bot(settings, worker, database)
    task = await start_bot(first, world.fake)
    try:
        assert isinstance(first.rate_limiter, SharedRateLimiter)
        posted = await world.fake.post_message(world.coloring, world.alice, files=[page_file()])
        assert (await world.reply_to(posted)).files
    finally:
        await stop_bot(first, task)

    # Another bot process: its own connections to the same database file.
    other_db = Database.from_settings(settings)
    second = make_bot(settings, worker, other_db)
    task = await start_bot(second, world.fake)
    try:
        again = await world.fake.post_message(world.coloring, world.alice,
                                              files=[page_file(seed=5)])
        reply = await world.reply_to(again)
        assert "Slow down" in reply.content and not reply.files
        other = await world.fake.post_message(world.coloring, world.bob, files=[page_file()])
        assert (await world.reply_to(other)).files  # bob has a window of his own
    finally:
        await stop_bot(second, task)
        await other_db.close()

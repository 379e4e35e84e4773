"""THE must-show: concurrent vote changes leave one live vote per (user, page).

200 vote changes by 50 users on one page, all in flight at once (asyncio.gather,
each in its own session on its own pooled connection), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from db.models import Vote
from db.repo import Database
from tests.db.conftest import Backend
from tests.db.helpers import FAMILY, posted_page, vote_history

USERS = 50
CHANGES = 200
EMOJIS = list(FAMILY.values())
REPLY = 9001


def _plan(seed: int) -> list[tuple[int, str]]:
    """200 (user, emoji) changes, 4 per user, each a different emoji than the user's
    previous one, shuffled so every user's changes race each other."""
    rng = random.Random(seed)
    plan = []
    for user in range(1, USERS + 1):
        choices = [rng.choice(EMOJIS)]
        while len(choices) < CHANGES // USERS:
            choices.append(rng.choice([e for e in EMOJIS if e != choices[-1]]))
        plan += [(user, emoji) for emoji in choices]
    rng.shuffle(plan)
    return plan


async def _live_per_user(db: Database, page_id: int) -> dict[int, list[int]]:
    live: dict[int, list[int]] = defaultdict(list)
    for vote in await db.live_votes(page_id=page_id):
        live[vote.user_id].append(vote.coloring_id)
    return live


class InFlight:
    """Counts database transactions open at once (on their own connections) across
    Database objects: how much the changes really overlapped in the database."""

    def __init__(self, dbs: list[Database]) -> None:
        self.now = self.peak = 0
        for db in dbs:
            sync_engine = db.engine.sync_engine
            event.listen(sync_engine, "begin", self._begin)
            event.listen(sync_engine, "commit", self._end)
            event.listen(sync_engine, "rollback", self._end)

    def _begin(self, conn) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def _end(self, conn) -> None:
        self.now -= 1


async def _hammer(dbs: list[Database], plan: list[tuple[int, str]]) -> tuple[list, float]:
    """All changes at once, spread over `dbs` (separate engines, as separate processes)."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(dbs[n % len(dbs)].cast_vote(REPLY, emoji, user) for n, (user, emoji) in enumerate(plan))
    )
    return results, time.perf_counter() - started


async def _check(db: Database, page_id: int, ids: dict[str, int], plan, results) -> Counter:
    statuses = Counter(r.status for r in results)
    cast_by: dict[int, set[int]] = defaultdict(set)
    for user, emoji in plan:
        cast_by[user].add(ids[emoji])

    # Exactly one live vote per (user, page), and it is one the user cast.
    live = await _live_per_user(db, page_id)
    assert sorted(live) == list(range(1, USERS + 1))
    for user, colorings in live.items():
        assert len(colorings) == 1, (user, colorings)
        assert colorings[0] in cast_by[user], (user, colorings, cast_by[user])

    # Straight from SQL, no repository in between: no (user, page) with two live votes.
    async def doubles(s) -> list:
        return (
            await s.execute(
                select(Vote.user_id)
                .where(Vote.removed_at.is_(None))
                .group_by(Vote.user_id, Vote.page_id)
                .having(func.count() > 1)
            )
        ).all()

    assert await db.run(doubles, write=False) == []

    # Each user's history is a clean chain: every change that was not "unchanged"
    # left one row, all ended but the last, which is the live one.
    history = await vote_history(db, page_id)
    assert len(history) == CHANGES - statuses["unchanged"]
    by_user: dict[int, list[Vote]] = defaultdict(list)
    for vote in history:
        by_user[vote.user_id].append(vote)
    for user, votes in by_user.items():
        assert [v.removed_at is None for v in votes] == [False] * (len(votes) - 1) + [True]
        assert votes[-1].coloring_id == live[user][0]
        for earlier, later in zip(votes, votes[1:], strict=False):
            assert earlier.coloring_id != later.coloring_id
            assert earlier.removed_at is not None and earlier.removed_at <= later.added_at
    assert statuses["added"] == USERS  # each user's first change to land
    assert statuses["ignored"] == 0
    return statuses


async def test_200_concurrent_vote_changes_by_50_users(backend: Backend, tmp_path: Path) -> None:
    # Two Database objects with their own engines and pools: like two bot processes
    # (shards), so the changes overlap in the database itself, not only in one
    # process's queue. Up to 2 x 15 connections: the shared server allows 100.
    kwargs = {"pool_size": 10, "max_overflow": 5}
    db = backend.database(store_dir=tmp_path / "store", **kwargs)
    other = backend.database(store_dir=tmp_path / "store", **kwargs)
    try:
        await db.upgrade()
        page_id, ids = await posted_page(db, message_id=9000, reply_id=REPLY)
        plan = _plan(seed=3)
        in_flight = InFlight([db, other])
        results, seconds = await _hammer([db, other], plan)
        statuses = await _check(db, page_id, ids, plan, results)
        if backend.name == "postgresql":
            assert in_flight.peak > 2  # they really overlapped in the database
        # (SQLite has one writer at a time: the two engines queue on the file lock.)
        print(
            f"\n[{backend.name}] {CHANGES} concurrent vote changes by {USERS} users in "
            f"{seconds:.2f} s ({CHANGES / seconds:.0f}/s), at most {in_flight.peak} "
            f"transactions open at once: {dict(statuses)}, "
            f"{db.retries + other.retries} retried transactions, {USERS} live votes"
        )
    finally:
        await db.close()
        await other.close()


@pytest.mark.postgres
async def test_without_the_lock_the_database_constraint_still_holds(
    pg_backend: Backend, tmp_path: Path, monkeypatch
) -> None:
    # Take away the per-(user, page) advisory lock: racing moves now collide in the
    # partial unique index, which refuses the second live vote; the retry moves it.
    # (PostgreSQL only: SQLite runs one writer at a time whatever we do.)
    backend = pg_backend

    async def no_lock(self, s, user_id, page_id) -> None:
        return None

    monkeypatch.setattr(Database, "_lock_user_page", no_lock)
    db = backend.database(store_dir=tmp_path / "store", attempts=30, pool_size=10)
    try:
        await db.upgrade()
        page_id, ids = await posted_page(db, message_id=9000, reply_id=REPLY)
        plan = _plan(seed=11)[:80]
        results, seconds = await _hammer([db], plan)
        live = await _live_per_user(db, page_id)
        assert all(len(c) == 1 for c in live.values())
        assert len(live) == len({u for u, _ in plan})
        print(f"\n[{backend.name}] unlocked: {len(plan)} changes, {db.retries} retries")
    finally:
        await db.close()


async def test_concurrent_votes_and_removals(backend: Backend, tmp_path: Path) -> None:
    db = backend.database(store_dir=tmp_path / "store", pool_size=10)
    try:
        await db.upgrade()
        page_id, ids = await posted_page(db, message_id=9000, reply_id=REPLY)
        rng = random.Random(5)
        ops = []
        for _ in range(80):
            user, emoji = rng.randint(1, 20), rng.choice(EMOJIS)
            if rng.random() < 0.3:
                ops.append(db.remove_vote(REPLY, emoji, user))
            else:
                ops.append(db.cast_vote(REPLY, emoji, user))
        await asyncio.gather(*ops)
        live = await _live_per_user(db, page_id)
        assert all(len(c) == 1 for c in live.values())
    finally:
        await db.close()


"""Rate-limit windows in the database, so every bot process sharing it counts the same
requests.

A sliding window per (scope, user): one row per counted request, with the wall-clock
second it was counted at. `hit` checks and counts in one transaction, serialized per
(scope, user): SQLite's writers take the lock up front (BEGIN IMMEDIATE), PostgreSQL
takes a transaction-scoped advisory lock on the pair. A refused request is not
counted. One scope has one window (`prune` deletes by it).

    wait = await hit(db, "pages", user_id, limit=5, window=60.0)   # 0.0: go ahead

Nothing here forgets a user on `/forget`: forgetting is not a way to post more.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import advisory_lock, changed_rows
from db.models import RateLimitHit

if TYPE_CHECKING:
    from db import Database

# First key of the two-int advisory locks that serialize one (scope, user) window.
_LOCK_NAMESPACE = 0x726C696D  # "rlim"


async def hit(
    db: Database,
    scope: str,
    user_id: int,
    *,
    limit: int,
    window: float,
    cost: int = 1,
    now: float | None = None,
) -> float:
    """Count `cost` requests of `user_id` in `scope` if at most `limit` fit in the last
    `window` seconds, and return 0.0; otherwise count nothing and return the seconds
    until they would fit. A request costing more than `limit` is allowed on an empty
    window (it counts as `limit`). `now`: seconds since the epoch (tests)."""
    if limit < 1 or window <= 0:
        raise ValueError("a rate limit needs limit >= 1 and window > 0")
    cost = max(1, min(cost, limit))

    async def tx(s: AsyncSession) -> float:
        at = time.time() if now is None else now
        await advisory_lock(s, _LOCK_NAMESPACE, f"{scope}:{user_id}")
        mine = (RateLimitHit.scope == scope, RateLimitHit.user_id == user_id)
        await s.execute(delete(RateLimitHit).where(*mine, RateLimitHit.at <= at - window))
        hits = list(
            (await s.execute(select(RateLimitHit.at).where(*mine).order_by(RateLimitHit.at)))
            .scalars()
        )
        if len(hits) + cost > limit:
            # The oldest hits that must expire before `cost` more fit.
            return max(0.001, hits[len(hits) + cost - limit - 1] + window - at)
        s.add_all([RateLimitHit(scope=scope, user_id=user_id, at=at) for _ in range(cost)])
        return 0.0

    return await db.run(tx)


async def prune(db: Database, scope: str, window: float, *, now: float | None = None) -> int:
    """Delete every user's hits in `scope` older than `window` (users who never came
    back); returns how many."""

    async def tx(s: AsyncSession) -> int:
        cutoff = (time.time() if now is None else now) - window
        return await changed_rows(
            s, delete(RateLimitHit).where(RateLimitHit.scope == scope, RateLimitHit.at <= cutoff)
        )

    return await db.run(tx)


async def counted(db: Database, scope: str, user_id: int) -> int:
    """How many hits of `user_id` in `scope` are stored (expired ones included until
    the next hit or prune)."""

    async def tx(s: AsyncSession) -> int:
        query = select(func.count()).select_from(RateLimitHit).where(
            RateLimitHit.scope == scope, RateLimitHit.user_id == user_id)
        return int(await s.scalar(query) or 0)

    return await db.run(tx, write=False)

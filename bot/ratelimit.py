"""Per-user rate limits: at most `limit` pages every `window` seconds.

A sliding window of each user's recent accepted requests; a refused request is not
counted, so someone who keeps trying is not locked out longer. `/forget` does not
touch the window.

Two kinds, one interface (`await limiter.hit(user_id, cost=1)` -> seconds to wait, 0.0
when allowed):

- `SharedRateLimiter` keeps the windows in the database (db/ratelimits.py), so every
  bot process using that database counts the same requests. What the bot uses.
- `RateLimiter` keeps them in this process's memory (a single process, tests).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from db import Database


class Limiter(Protocol):
    limit: int
    window: float

    async def hit(self, user_id: int, cost: int = 1) -> float:
        """Count `cost` requests for `user_id` if allowed and return 0.0; otherwise
        count nothing and return how many seconds until they would be allowed."""
        ...


def _check(limit: int, window: float) -> None:
    if limit < 1 or window <= 0:
        raise ValueError("a rate limit needs limit >= 1 and window > 0")


class RateLimiter:
    """The windows in this process's memory."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        _check(limit, window)
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: defaultdict[int, deque[float]] = defaultdict(deque)

    async def hit(self, user_id: int, cost: int = 1) -> float:
        now = self._clock()
        hits = self._hits[user_id]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        cost = max(1, min(cost, self.limit))  # a single big request fits an empty window
        if len(hits) + cost > self.limit:
            # The oldest hits that must expire before `cost` more fit.
            return hits[len(hits) + cost - self.limit - 1] + self.window - now
        hits.extend([now] * cost)
        return 0.0


class SharedRateLimiter:
    """The windows in the database, shared by every process using it.

    Times are the wall clock (`time.time`, or `clock`): processes on several machines
    need synchronized clocks (NTP), as they do for anything else time-stamped. Users
    who never come back leave their last few hits behind; one process in a while
    (every `window` seconds at most) deletes every user's expired hits.
    """

    def __init__(
        self,
        db: Database,
        limit: int,
        window: float,
        *,
        scope: str = "pages",
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check(limit, window)
        self.db = db
        self.limit = limit
        self.window = window
        self.scope = scope
        self._clock = clock
        self._pruned_at = clock()

    async def hit(self, user_id: int, cost: int = 1) -> float:
        from db.ratelimits import hit, prune

        now = self._clock()
        if now - self._pruned_at >= self.window:
            self._pruned_at = now
            await prune(self.db, self.scope, self.window, now=now)
        return await hit(self.db, self.scope, user_id, limit=self.limit, window=self.window,
                         cost=cost, now=now)

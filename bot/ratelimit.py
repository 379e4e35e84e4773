"""Per-user rate limits: at most `limit` pages every `window` seconds.

A sliding window of each user's recent accepted requests; a refused request is not
counted, so someone who keeps trying is not locked out longer.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: defaultdict[int, deque[float]] = defaultdict(deque)

    def hit(self, user_id: int, cost: int = 1) -> float:
        """Count `cost` requests for `user_id` if allowed and return 0.0; otherwise count
        nothing and return how many seconds until they would be allowed."""
        now = self._clock()
        hits = self._hits[user_id]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        cost = min(cost, self.limit)  # a single big request is allowed on an empty window
        if len(hits) + cost > self.limit:
            # The oldest hits that must expire before `cost` more fit.
            return hits[len(hits) + cost - self.limit - 1] + self.window - now
        hits.extend([now] * cost)
        return 0.0

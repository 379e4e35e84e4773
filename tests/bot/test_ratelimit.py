from __future__ import annotations

import pytest

from bot.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_limit_then_refuses_with_the_wait():
    clock = Clock()
    limiter = RateLimiter(limit=3, window=60, clock=clock)
    assert [limiter.hit(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert limiter.hit(1) == pytest.approx(50.0)  # the first hit expires at +60


def test_window_slides():
    clock = Clock()
    limiter = RateLimiter(limit=2, window=60, clock=clock)
    limiter.hit(1)
    clock.now += 30
    limiter.hit(1)
    clock.now += 31  # the first hit is out of the window, the second is not
    assert limiter.hit(1) == 0.0
    assert limiter.hit(1) == pytest.approx(29.0)


def test_refused_requests_do_not_count():
    clock = Clock()
    limiter = RateLimiter(limit=1, window=10, clock=clock)
    limiter.hit(1)
    for _ in range(5):
        assert limiter.hit(1) > 0
    clock.now += 10
    assert limiter.hit(1) == 0.0


def test_users_are_independent():
    limiter = RateLimiter(limit=1, window=60, clock=Clock())
    assert limiter.hit(1) == 0.0
    assert limiter.hit(2) == 0.0
    assert limiter.hit(1) > 0
    assert not hasattr(limiter, "forget")  # /forget keeps the window


def test_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        RateLimiter(limit=0, window=60)

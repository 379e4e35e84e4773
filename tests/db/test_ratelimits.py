"""Rate-limit windows in the database: shared by every process that uses it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from db import Database
from db.ratelimits import counted, hit, prune
from tests.db.conftest import Backend

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0


async def test_allows_the_limit_then_says_how_long_to_wait(db: Database) -> None:
    assert [await hit(db, "pages", 1, limit=3, window=60, now=T0 + k) for k in range(3)] == [
        0.0, 0.0, 0.0]
    assert await hit(db, "pages", 1, limit=3, window=60, now=T0 + 10) == pytest.approx(50.0)
    # Refused requests are not counted: the wait does not grow.
    assert await hit(db, "pages", 1, limit=3, window=60, now=T0 + 20) == pytest.approx(40.0)
    assert await counted(db, "pages", 1) == 3
    # The window slides: the first hit expires at +60, the second at +61.
    assert await hit(db, "pages", 1, limit=3, window=60, now=T0 + 60) == 0.0
    assert await hit(db, "pages", 1, limit=3, window=60, now=T0 + 60.5) == pytest.approx(0.5)


async def test_users_and_scopes_are_independent(db: Database) -> None:
    assert await hit(db, "pages", 1, limit=1, window=60, now=T0) == 0.0
    assert await hit(db, "pages", 2, limit=1, window=60, now=T0) == 0.0
    assert await hit(db, "duels", 1, limit=1, window=60, now=T0) == 0.0
    assert await hit(db, "pages", 1, limit=1, window=60, now=T0 + 1) > 0


async def test_a_big_request_fits_an_empty_window(db: Database) -> None:
    assert await hit(db, "pages", 1, limit=2, window=60, cost=5, now=T0) == 0.0
    assert await counted(db, "pages", 1) == 2
    assert await hit(db, "pages", 1, limit=2, window=60, now=T0 + 1) == pytest.approx(59.0)


async def test_forget_does_not_reset_the_window(db: Database) -> None:
    assert await hit(db, "pages", 3003, limit=1, window=3600) == 0.0
    await db.forget_user(3003)
    assert await hit(db, "pages", 3003, limit=1, window=3600) > 3500


async def test_prune_deletes_only_what_is_out_of_the_window(db: Database) -> None:
    await hit(db, "pages", 1, limit=5, window=60, now=T0)
    await hit(db, "pages", 2, limit=5, window=60, now=T0 + 30)
    assert await prune(db, "pages", 60, now=T0 + 70) == 1
    assert (await counted(db, "pages", 1), await counted(db, "pages", 2)) == (0, 1)


async def test_two_databases_on_one_file_share_the_window(backend: Backend, tmp_path) -> None:
    first, second = backend.database(), backend.database()
    try:
        await first.upgrade()
        assert await hit(first, "pages", 7, limit=1, window=3600) == 0.0
        assert await hit(second, "pages", 7, limit=1, window=3600) > 0
    finally:
        await first.close()
        await second.close()


_HITTER = """
import asyncio, json, sys
from db import Database
from db.ratelimits import hit
db = Database(sys.argv[1], **json.loads(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()  # "go": start together with the test's own hits

async def main():
    allowed = 0
    for _ in range(int(sys.argv[3])):
        allowed += await hit(db, "pages", 42, limit=5, window=3600) == 0.0
    await db.close()
    print(allowed, flush=True)

asyncio.run(main())
"""


async def test_two_processes_hammering_one_user_get_the_limit_between_them(
        backend: Backend) -> None:
    db = backend.database()
    await db.upgrade()
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HITTER, backend.url, json.dumps(backend.engine_kwargs), "12",
        cwd=REPO_ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert await asyncio.wait_for(other.stdout.readline(), 120) == b"ready\n"
        other.stdin.write(b"go\n")
        await other.stdin.drain()
        # This process's own requests race three at a time, the other process's in turn.
        mine = 0
        for _ in range(4):
            results = await asyncio.gather(
                *(hit(db, "pages", 42, limit=5, window=3600) for _ in range(3)))
            mine += sum(r == 0.0 for r in results)
        out, err = await asyncio.wait_for(other.communicate(), 120)
        assert other.returncode == 0, err.decode()
        theirs = int(out.decode().split()[-1])
        assert mine + theirs == 5
        assert await counted(db, "pages", 42) == 5
    finally:
        if other.returncode is None:
            other.kill()
            await other.wait()
        await db.close()

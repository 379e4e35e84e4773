"""`check_storage` / `colorbot db check|gc`: junk found and removed, nothing live touched,
and a storing process killed at random instants leaves nothing the next start keeps."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import pytest

from colorbot.cli import main
from colorbot.settings import Settings
from db import Database
from db.check import check_storage
from tests.db.helpers import colorings_of, png, posted_page


def _age(path: Path, seconds: float = 7200) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


async def test_check_finds_and_repairs_junk_and_spares_live_data(db: Database) -> None:
    assert db.store is not None
    page_id, _ = await posted_page(db, message_id=1, reply_id=2)
    orphan = db.store.put(png("written, never recorded"))
    _age(db.store.path(orphan))
    young = db.store.put(png("being recorded right now"))
    part = db.store.path(orphan).parent / ".tmp-abc.part"
    part.write_bytes(b"half a file")
    _age(part)
    dotfile = db.store.root / ".stray"
    dotfile.write_bytes(b"x")
    _age(dotfile)
    lonely = await db.record_page(png("a page whose reply never came"), message_id=3)
    missing = await db.record_page(png("a page whose file went away"), message_id=4)
    db.store.delete(missing.page.sha256)

    report = await check_storage(db, min_age_s=60)
    assert report.orphans == [orphan] and report.young == 1
    assert sorted(Path(p).name for p in report.stale_parts) == [".stray", ".tmp-abc.part"]
    assert report.missing_page_files == [missing.page.id]
    assert report.pages_without_colorings == []  # both pages are young
    assert db.store.exists(orphan)  # a check alone changes nothing

    report = await check_storage(db, repair=True, min_age_s=0)
    assert set(report.pages_without_colorings) == {lonely.page.id, missing.page.id}
    assert report.removed_pages == 2
    assert not db.store.exists(orphan) and not part.exists() and not dotfile.exists()
    assert not db.store.exists(lonely.page.sha256)  # the removed page's file went too
    assert db.store.exists((await db.get_page(page_id)).sha256)
    assert all(db.store.exists(c.sha256) for c in await colorings_of(db, page_id))
    assert (await check_storage(db, min_age_s=0)).problems == 0
    del young


async def test_put_of_a_known_file_makes_it_young_again(db: Database) -> None:
    assert db.store is not None
    sha = db.store.put(png("posted again later"))
    _age(db.store.path(sha))
    db.store.put(png("posted again later"))
    assert (await check_storage(db, repair=True, min_age_s=60)).orphans == []
    assert db.store.exists(sha)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COLORBOT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


async def test_db_check_and_gc_commands(data_dir: Path, capsys) -> None:
    async with Database.from_settings(Settings(data_dir=data_dir)) as db:
        await db.upgrade()
        await posted_page(db, message_id=1, reply_id=2)
        assert db.store is not None
        orphan = db.store.put(png("orphan"))
    assert await asyncio.to_thread(main, ["db", "check", "--min-age", "0"]) == 1
    assert "orphan files: 1" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "gc", "--min-age", "0"]) == 0
    assert "removed 1 file(s)" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["db", "check", "--min-age", "0"]) == 0
    assert not (data_dir / "store" / orphan[:2] / orphan[2:4] / orphan).exists()


def _store_forever(url: str, store_dir: Path, seed: int, ready_fd: int) -> None:
    """Child process: record pages with colorings, as fast as it can, until killed."""

    async def run() -> None:
        db = Database(url, store_dir=store_dir)
        os.write(ready_fd, b"x")
        n = 0
        while True:
            n += 1
            await posted_page(db, message_id=seed * 100_000 + n, reply_id=-(seed * 100_000 + n),
                              image=png(f"{seed}-{n}-{random.random()}"))

    asyncio.run(run())


def test_sigkill_while_storing_leaves_nothing_the_next_start_keeps(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'colorbot.sqlite3'}"
    store_dir = tmp_path / "store"

    async def migrate() -> None:
        async with Database(url, store_dir=store_dir) as db:
            await db.upgrade()

    asyncio.run(migrate())
    rng = random.Random(11)
    deadline = time.monotonic() + 30
    kills = 0
    while kills < 20 and time.monotonic() < deadline:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest
            try:
                os.close(read_fd)
                _store_forever(url, store_dir, kills + 1, write_fd)
            finally:
                os._exit(1)
        os.close(write_fd)
        os.read(read_fd, 1)  # started
        os.close(read_fd)
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
    assert kills == 20

    async def next_start() -> tuple:
        async with Database(url, store_dir=store_dir) as db:
            before = await check_storage(db, min_age_s=0)
            await check_storage(db, repair=True, min_age_s=0)  # what the bot runs at start
            after = await check_storage(db, min_age_s=0)
            return before, after

    before, after = asyncio.run(next_start())
    print("junk before the next start:", before.lines())
    assert before.missing_page_files == [] and before.missing_coloring_files == []
    assert after.orphans == [] and after.stale_parts == []
    assert after.missing_page_files == [] and after.missing_coloring_files == []
    assert after.pages_without_colorings == []

"""Fixtures for the bot's end-to-end tests: the real bot against the fake Discord.

The bot object runs in the test's event loop and connects over real HTTP and a real
websocket; colorings come from the in-process worker with a tiny family, votes land in
a SQLite database migrated by Alembic.

All of it runs in one event loop for the session (the e2e modules set
`pytestmark = E2E` from helpers), so the in-process worker, whose start-up loads and warms up every
member, is started once; the fake Discord, the database and the bot are new per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import ColorBot
from colorbot.settings import Settings
from tests.bot.helpers import TOKEN, World, build_tiny_family, start_bot, stop_bot
from tests.fakediscord import FakeDiscord


@pytest.fixture(scope="session")
def family_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_family(tmp_path_factory.mktemp("family"))


@pytest_asyncio.fixture(loop_scope="session")
async def fake():
    async with FakeDiscord(token=TOKEN) as fake:
        yield fake
    # Every request the bot made was one the fake knows (else it would have got a 404).
    assert fake.unhandled == []


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    alice, bob, carol = (fake.add_user(n) for n in ("alice", "bob", "carol"))
    mod = fake.add_moderator("mod")
    guild = fake.add_guild("family", ["coloring", "general"])
    return World(fake, guild, alice, bob, carol, mod)


@pytest.fixture
def settings(tmp_path: Path, fake: FakeDiscord, family_dir: Path) -> Settings:
    return Settings(
        discord_token=TOKEN,
        data_dir=tmp_path / "data",
        family_path=str(family_dir),
        discord_api_base=fake.api_base,
        rate_limit_pages=100,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def database(settings: Settings):
    from db import Database

    db = Database.from_settings(settings)
    await db.upgrade()
    yield db
    await db.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def worker(family_dir: Path):
    from bot.worker_client import InProcessWorker

    worker = InProcessWorker(str(family_dir), device="cpu")
    yield worker
    await worker.close()


def make_bot(settings: Settings, worker, database) -> ColorBot:
    return ColorBot(settings, worker=worker, store=database, guild_ready_timeout=0.05)


@pytest_asyncio.fixture(loop_scope="session")
async def bot(world: World, settings: Settings, worker, database):
    bot = make_bot(settings, worker, database)
    task = await start_bot(bot, world.fake)
    yield bot
    await stop_bot(bot, task)

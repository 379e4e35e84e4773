"""Bad input gets a kind answer, and the bot keeps serving."""

from __future__ import annotations

import dataclasses

from bot.worker_client import WorkerError
from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, page_file, start_bot, stop_bot
from tests.fakediscord import StoredFile

pytestmark = E2E


async def test_bad_attachment_gets_a_kind_message_and_the_next_page_is_served(world, bot):
    fake = world.fake
    text = await fake.post_message(world.coloring, world.alice,
                                   files=[StoredFile("notes.txt", b"hello", "text/plain")])
    corrupt = await fake.post_message(world.coloring, world.alice,
                                      files=[StoredFile("broken.png", b"\x89PNG\r\n\x1a\nnope",
                                                        "image/png")])
    good = await fake.post_message(world.coloring, world.bob, files=[page_file()])

    text_reply = await world.reply_to(text)
    assert "can only color pictures" in text_reply.content and "notes.txt" in text_reply.content
    corrupt_reply = await world.reply_to(corrupt)
    assert corrupt_reply.files == []
    assert "Traceback" not in corrupt_reply.content
    assert "picture" in corrupt_reply.content.lower() or "image" in corrupt_reply.content.lower()
    good_reply = await world.reply_to(good)
    assert len(good_reply.files) == 5


async def test_too_large_and_rate_limited(world, settings, worker, database):
    fake = world.fake
    settings = dataclasses.replace(settings, max_upload_bytes=2_000, rate_limit_pages=2,
                                   rate_limit_seconds=600)
    bot = make_bot(settings, worker, database)
    task = await start_bot(bot, fake)
    try:
        big = StoredFile("huge.png", b"\x89PNG" + b"0" * 5_000, "image/png")
        too_large = await fake.post_message(world.coloring, world.alice, files=[big])
        assert "MB" in (await world.reply_to(too_large)).content

        served = await fake.post_message(world.coloring, world.alice, files=[page_file()])
        assert (await world.reply_to(served)).files
        refused = await fake.post_message(world.coloring, world.alice, files=[page_file()])
        assert "Slow down" in (await world.reply_to(refused)).content
        # Someone else is not slowed down by alice.
        other = await fake.post_message(world.coloring, world.bob, files=[page_file()])
        assert (await world.reply_to(other)).files
    finally:
        await stop_bot(bot, task)


class DownWorker:
    """A worker whose every attempt failed (the client already retried)."""

    def __init__(self, real):
        self.real = real

    async def family(self):
        return await self.real.family()

    async def colorize(self, *args, **kwargs):
        raise WorkerError("The coloring service is busy or unreachable right now. "
                          "Please try again in a minute.", retryable=True)


class FlakyDatabase:
    """The real database, except that recording a page fails like a dropped connection."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    async def record_page(self, *args, **kwargs):
        from db import DatabaseUnavailable

        raise DatabaseUnavailable("connection refused")


async def test_worker_down_and_database_hiccup_are_explained(world, settings, worker, database):
    fake = world.fake
    for broken_worker, broken_db, expected in (
        (DownWorker(worker), database, "busy or unreachable"),
        (worker, FlakyDatabase(database), "notebook"),
    ):
        bot = make_bot(settings, broken_worker, broken_db)
        task = await start_bot(bot, fake)
        try:
            page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
            reply = await world.reply_to(page)
            assert expected in reply.content
            assert "connection refused" not in reply.content  # details stay in the log
            interaction = await fake.slash(world.alice, world.general, "colorize",
                                           {"page": page_file()})
            followups = interaction.followup_ids
            await fake.wait_until(lambda: followups, 20)  # noqa: B023 (awaited right here)
            assert expected in fake.messages[followups[0]].content
        finally:
            await stop_bot(bot, task)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_no_worker_reachable_bot_still_starts_and_explains(world, settings, database):
    """WORKER_URLS pointing at nothing: the real HTTP client retries, gives up kindly,
    and the bot stays up (it keeps looking for the family in the background)."""
    from bot.worker_client import WorkerClient

    fake = world.fake
    client = WorkerClient([f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"],
                          timeout=5, backoff_s=0.01, connect_timeout=1)
    bot = make_bot(settings, client, database)
    task = await start_bot(bot, fake)
    try:
        assert bot.family_members == []
        page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
        reply = await world.reply_to(page)
        assert "busy or unreachable" in reply.content
        assert reply.files == []
    finally:
        await stop_bot(bot, task)
        await client.close()


class LateWorker:
    """A worker that is not up yet when the bot starts, then is."""

    def __init__(self, real):
        self.real = real
        self.calls = 0

    async def family(self):
        self.calls += 1
        if self.calls == 1:
            raise WorkerError("not yet", retryable=True)
        return await self.real.family()

    async def colorize(self, *args, **kwargs):
        return await self.real.colorize(*args, **kwargs)


async def test_worker_that_comes_up_after_the_bot(world, settings, worker, database):
    fake = world.fake
    bot = make_bot(settings, LateWorker(worker), database)
    task = await start_bot(bot, fake)
    try:
        page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
        reply = await world.reply_to(page)
        assert len(reply.files) == 5
    finally:
        await stop_bot(bot, task)

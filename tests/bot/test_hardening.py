"""The bot's hardening: junk never recorded, one reply per message, rate limits that
mean something, attachments only from Discord, storage upkeep at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time

from aiohttp import web

from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, page_file, start_bot, stop_bot
from tests.bot.test_commands import run as run_slash
from tests.fakediscord import StoredFile

pytestmark = E2E


@contextlib.asynccontextmanager
async def running_bot(world, settings, worker, database, **overrides):
    bot = make_bot(dataclasses.replace(settings, **overrides), worker, database)
    task = await start_bot(bot, world.fake)
    try:
        yield bot
    finally:
        await stop_bot(bot, task)


def stored_files(settings) -> list[str]:
    root = settings.data_dir / "store"
    return [name for _, _, names in os.walk(root) for name in names] if root.exists() else []


async def test_junk_is_not_recorded(world, bot, database, settings):
    junk = StoredFile("junk.png", os.urandom(50_000), "image/png")
    message = await world.fake.post_message(world.coloring, world.alice, files=[junk])
    reply = await world.reply_to(message)
    assert "couldn't read" in reply.content.lower() or "can't read" in reply.content.lower()
    assert await database.pages() == []
    assert stored_files(settings) == []


async def test_ten_attachments_get_one_reply_listing_the_rest(world, bot):
    files = [page_file(f"p{i}.png", seed=i) for i in range(8)]
    files += [StoredFile(f"notes{i}.txt", b"hello", "text/plain") for i in range(2)]
    message = await world.fake.post_message(world.coloring, world.alice, files=files)
    reply = await world.reply_to(message)
    await asyncio.sleep(1.0)  # room for any further (wrong) replies
    assert len(world.fake.replies_to(message.id)) == 1
    assert "**notes0.txt**" in reply.content and "**notes1.txt**" in reply.content
    assert all(f"**p{i}.png**" in reply.content for i in range(1, 8))
    assert reply.files  # the first page was colored


async def test_non_images_do_not_count_against_the_limit(world, settings, worker, database):
    async with running_bot(world, settings, worker, database, rate_limit_pages=1):
        text = StoredFile("notes.txt", b"hello", "text/plain")
        message = await world.fake.post_message(world.coloring, world.alice, files=[text])
        assert "can only color pictures" in (await world.reply_to(message)).content
        page = await world.fake.post_message(world.coloring, world.alice, files=[page_file()])
        assert (await world.reply_to(page)).files  # colored, not "slow down"


async def test_forget_keeps_the_rate_limit_window(world, settings, worker, database):
    async with running_bot(world, settings, worker, database, rate_limit_pages=1):
        first = await world.fake.post_message(world.coloring, world.alice, files=[page_file()])
        assert (await world.reply_to(first)).files
        assert "forgot" in await run_slash(world.fake, world.alice, world.general, "forget")
        again = await world.fake.post_message(world.coloring, world.alice,
                                              files=[page_file(seed=3)])
        assert "Slow down" in (await world.reply_to(again)).content


async def test_attachment_on_a_foreign_host_is_refused_unfetched(world, bot):
    hits = []

    async def anything(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=b"")

    app = web.Application()
    app.router.add_get("/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # Same host as the fake Discord, another port: another origin.
    world.fake.attachment_base = f"http://127.0.0.1:{port}"
    try:
        message = await world.fake.post_message(world.coloring, world.alice, files=[page_file()])
        reply = await world.reply_to(message)
    finally:
        world.fake.attachment_base = None
        await runner.cleanup()
    assert "uploaded to Discord" in reply.content
    assert hits == []


async def test_a_lying_size_is_caught_while_streaming(world, settings, worker, database):
    async with running_bot(world, settings, worker, database, max_upload_bytes=20_000):
        world.fake.reported_size = 100
        try:
            big = StoredFile("big.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200_000), "image/png")
            message = await world.fake.post_message(world.coloring, world.alice, files=[big])
            reply = await world.reply_to(message)
        finally:
            world.fake.reported_size = None
        assert "**big.png**" in reply.content and "I can take pages up to" in reply.content


async def test_storage_upkeep_runs_at_start_up(world, settings, worker, database):
    from tests.db.helpers import png

    assert database.store is not None
    orphan = database.store.put(png("left by a crash"))
    old = time.time() - 3600
    os.utime(database.store.path(orphan), (old, old))
    async with running_bot(world, settings, worker, database):
        await world.fake.wait_until(lambda: not database.store.exists(orphan), 10)

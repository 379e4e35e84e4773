"""Votes on messages from before a restart still count (raw events + database)."""

from __future__ import annotations

from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, eventually, page_file, start_bot, stop_bot

pytestmark = E2E


async def test_vote_after_restart_counts(world, settings, worker, database):
    fake = world.fake
    first = make_bot(settings, worker, database)
    task = await start_bot(first, fake)
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)
    await stop_bot(first, task)

    # A new process would have an empty message cache: a new bot object does too.
    second = make_bot(settings, worker, database)
    task = await start_bot(second, fake)
    try:
        assert second.get_partial_messageable(reply.channel_id) is not None
        assert all(m.id != reply.id for m in second.cached_messages)
        await fake.react(world.bob, reply, "📎")
        target = await database.reply_target(reply.id)
        live = await eventually(lambda: database.live_votes(page_id=target.page.id))
        assert [(v.user_id, v.coloring_id) for v in live] == [
            (world.bob.id, target.colorings["📎"].id)]
        assert fake.identify_count == 2
    finally:
        await stop_bot(second, task)

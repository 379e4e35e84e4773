"""Votes are reactions on the reply: one live vote per user per page, in the database."""

from __future__ import annotations

from tests.bot.helpers import E2E, eventually, page_file

pytestmark = E2E


async def live_votes(database, fake, reply):
    """{user id: member} of the live votes on the reply's page."""
    target = await database.reply_target(reply.id)
    votes = await database.live_votes(page_id=target.page.id)
    by_coloring = {c.id: target.members[emoji] for emoji, c in target.colorings.items()}
    return {v.user_id: by_coloring[v.coloring_id] for v in votes}


async def settled(fake, bot, database, reply, expected):
    """Wait until the live votes are `expected` (the bot handles reactions async)."""
    got = await eventually(lambda: live_votes(database, fake, reply), lambda v: v == expected)
    assert got == expected


async def test_three_users_vote_and_one_changes_its_mind(world, bot, database):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)

    await fake.react(world.alice, reply, "😀")
    await fake.react(world.bob, reply, "🌈")
    await fake.react(world.carol, reply, "😀")
    await settled(fake, bot, database, reply,
                  {world.alice.id: "openmoji", world.bob.id: "fluent", world.carol.id: "openmoji"})

    await fake.react(world.carol, reply, "🎨")  # carol changes her mind
    await settled(fake, bot, database, reply,
                  {world.alice.id: "openmoji", world.bob.id: "fluent", world.carol.id: "artworks"})

    # The bot takes carol's old reaction away, and that removal does not end her vote.
    await fake.wait_until(lambda: fake.reactions_on(reply.id, world.carol.id) == ["🎨"])
    await settled(fake, bot, database, reply,
                  {world.alice.id: "openmoji", world.bob.id: "fluent", world.carol.id: "artworks"})
    # The bot's own four reactions are not votes.
    assert fake.bot_user.id not in await live_votes(database, fake, reply)


async def test_removing_the_reaction_removes_the_vote(world, bot, database):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)
    await fake.react(world.bob, reply, "📎")
    await settled(fake, bot, database, reply, {world.bob.id: "clipart"})
    await fake.unreact(world.bob, reply, "📎")
    await settled(fake, bot, database, reply, {})


async def test_other_emoji_and_other_messages_are_not_votes(world, bot, database):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)
    chatter = await fake.post_message(world.general, world.bob, "hello")

    await fake.react(world.bob, reply, "👍")  # not a member's emoji
    await fake.react(world.bob, chatter, "😀")  # a member's emoji, but not on our reply
    await fake.react(world.bob, page, "🌈")  # the page itself is not a reply of ours
    await fake.react(world.carol, reply, "🌈")  # a real vote, to know events were handled
    await settled(fake, bot, database, reply, {world.carol.id: "fluent"})
    assert [v.user_id for v in await database.live_votes()] == [world.carol.id]

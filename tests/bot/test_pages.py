"""A page posted in an enabled channel is colored by every member, and votable."""

from __future__ import annotations

from tests.bot.helpers import E2E, MEMBERS, page_file

pytestmark = E2E


async def test_posted_page_gets_every_members_coloring_and_reactions(world, bot):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])

    reply = await world.reply_to(page)

    names = [f.filename for f in reply.files]
    assert names[0] == "page-family.png"  # the contact sheet first
    assert sorted(names[1:]) == sorted(f"page-{m}.png" for m, _ in MEMBERS)
    for member, emoji in MEMBERS:
        assert f"{emoji} **{member}**" in reply.content  # which emoji is which member
    assert fake.reactions_on(reply.id, fake.bot_user.id) == sorted(e for _, e in MEMBERS)
    assert world.coloring.id in fake.typing  # it showed it was working
    # discord.py spoke the real gateway protocol: v10, JSON, zlib-stream compressed.
    assert fake.gateway_queries[0] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}


async def test_pages_elsewhere_are_left_alone(world, bot):
    fake = world.fake
    elsewhere = await fake.post_message(world.general, world.alice, files=[page_file()])
    served = await fake.post_message(world.coloring, world.alice, files=[page_file(seed=1)])
    await world.reply_to(served)
    assert fake.replies_to(elsewhere.id) == []

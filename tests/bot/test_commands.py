"""`/channel enable|disable`, `/family`, `/leaderboard`, `/forget`."""

from __future__ import annotations

from tests.bot.helpers import E2E, MEMBERS, eventually, page_file
from tests.fakediscord.server import CHANNEL_MESSAGE

pytestmark = E2E


def answer(fake, interaction):
    """The text the user saw for an interaction (direct answer or followup)."""
    if interaction.followup_ids:
        return fake.messages[interaction.followup_ids[0]].content
    for kind, data, _ in interaction.callbacks:
        if kind == CHANNEL_MESSAGE:
            return data.get("content", "")
    return None


async def run(fake, *args, **kwargs):
    interaction = await fake.slash(*args, **kwargs)
    return await fake.wait_until(lambda: answer(fake, interaction), 20)


async def test_channel_enable_needs_manage_channels(world, bot):
    fake = world.fake
    refused = await run(fake, world.alice, world.general, "channel", subcommand="enable")
    assert "Manage Channels" in refused

    assert "will now be colored" in await run(fake, world.mod, world.general, "channel",
                                              subcommand="enable")
    page = await fake.post_message(world.general, world.alice, files=[page_file()])
    assert len((await world.reply_to(page)).files) == 5

    assert "won't color" in await run(fake, world.mod, world.coloring, "channel",
                                      subcommand="disable")
    ignored = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    served = await fake.post_message(world.general, world.alice, files=[page_file(seed=3)])
    await world.reply_to(served)
    assert fake.replies_to(ignored.id) == []


async def test_family_lists_every_member_with_its_growing_up_picture(world, bot):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "family")
    text = await fake.wait_until(lambda: answer(fake, interaction), 20)
    for name, emoji in MEMBERS:
        assert f"{emoji} **{name}** (v1)" in text
    assert "grew up on: artworks test pictures" in text
    message = fake.messages[interaction.followup_ids[0]]
    assert [f.filename for f in message.files] == ["artworks-growing-up.gif"]


async def test_leaderboard_rates_members_from_the_vote_pairs_with_a_chart(world, bot, database):
    fake = world.fake
    assert "No votes yet" in await run(fake, world.alice, world.general, "leaderboard")
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)
    await fake.react(world.alice, reply, "🌈")
    await fake.react(world.bob, reply, "🌈")
    await fake.react(world.carol, reply, "😀")
    await eventually(database.live_votes, lambda v: len(v) == 3)
    interaction = await fake.slash(world.alice, world.general, "leaderboard")
    text = await fake.wait_until(lambda: answer(fake, interaction), 20)
    lines = text.splitlines()
    assert "favourite share" in lines[0]
    # A vote picks one favourite among the colorings shown: fluent was picked in 2 of
    # the 3 votes, openmoji in 1, the two never voted for in none.
    assert lines[1].startswith("1. 🌈 **fluent** - ")
    assert "picked in 2 of 3 votes" in lines[1]
    assert lines[2].startswith("2. 😀 **openmoji** - ")
    assert "picked in 1 of 3 votes" in lines[2]
    assert {line.split("**")[1] for line in lines[3:5]} == {"clipart", "artworks"}
    assert all("picked in 0 of 3 votes" in line for line in lines[3:5])
    rating = [float(line.split(" - ")[1].split()[0].rstrip("%")) for line in lines[1:5]]
    assert rating[0] > rating[1] > rating[2]
    (chart,) = fake.messages[interaction.followup_ids[0]].files
    assert chart.filename == "leaderboard.png"
    assert chart.data[:8] == b"\x89PNG\r\n\x1a\n"


async def test_forget_deletes_the_callers_pages_and_votes(world, bot, database):
    fake = world.fake
    page = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(page)
    await fake.react(world.alice, reply, "🌈")
    await fake.react(world.bob, reply, "😀")
    other = await fake.post_message(world.coloring, world.bob, files=[page_file(seed=2)])
    await world.reply_to(other)
    await eventually(database.live_votes, lambda v: len(v) == 2)

    text = await run(fake, world.alice, world.general, "forget")
    assert "forgot 1 page(s)" in text
    assert await database.reply_target(reply.id) is None  # alice's page is gone
    assert [p.author_id for p in await database.pages()] == [world.bob.id]

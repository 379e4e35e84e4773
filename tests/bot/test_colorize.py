"""`/colorize page:<attachment> model:<member> strength:<...>`."""

from __future__ import annotations

from tests.bot.helpers import E2E, eventually, page_file
from tests.fakediscord.server import DEFERRED_CHANNEL_MESSAGE

pytestmark = E2E


async def test_colorize_with_one_member_defers_then_follows_up(world, bot, database):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file("cat.png"), "model": "artworks",
                                    "strength": 1.5})

    await fake.wait_until(lambda: interaction.callbacks, 10)
    kind, _, after = interaction.callbacks[0]
    assert kind == DEFERRED_CHANNEL_MESSAGE
    assert after < 3.0  # Discord's deadline for the first response

    await fake.wait_until(lambda: interaction.followup_ids, 60)
    message = fake.messages[interaction.followup_ids[0]]
    assert [f.filename for f in message.files] == ["cat-artworks.png"]
    assert "🎨 **artworks**" in message.content
    await fake.wait_until(lambda: fake.reactions_on(message.id, fake.bot_user.id) == ["🎨"])

    # Votable the same way as posted pages.
    await fake.react(world.bob, message.id, "🎨")
    target = await database.reply_target(message.id)
    assert target.members == {"🎨": "artworks"}
    assert target.colorings["🎨"].parameters["strength"] == 1.5
    live = await eventually(lambda: database.live_votes(page_id=target.page.id))
    assert [(v.user_id, v.coloring_id) for v in live] == [
        (world.bob.id, target.colorings["🎨"].id)]


async def test_colorize_without_model_uses_the_whole_family(world, bot):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file("dog.png")})
    await fake.wait_until(lambda: interaction.followup_ids, 60)
    message = fake.messages[interaction.followup_ids[0]]
    assert len(message.files) == 5  # contact sheet + four members


async def test_model_autocomplete_offers_the_family(world, bot):
    choices = await world.fake.autocomplete(world.alice, world.general, "colorize",
                                            {"model": "art"}, focused="model")
    assert choices == [{"name": "🎨 artworks", "value": "artworks"},
                       {"name": "📎 clipart", "value": "clipart"}]


async def test_unknown_model_gets_a_kind_answer(world, bot):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file(), "model": "picasso"})
    await fake.wait_until(lambda: interaction.followup_ids, 20)
    message = fake.messages[interaction.followup_ids[0]]
    assert "no family member called **picasso**" in message.content
    assert message.files == []


async def test_strength_out_of_range_is_explained(world, bot):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file(), "strength": 5.0})
    await fake.wait_until(lambda: interaction.followup_ids, 20)
    message = fake.messages[interaction.followup_ids[0]]
    assert "from 0.5 (soft) to 2.0 (bold)" in message.content
    assert message.files == []
    # Discord's own check: the command tells it the range.
    [strength] = [o for o in fake.command("colorize")["options"] if o["name"] == "strength"]
    assert (strength["min_value"], strength["max_value"]) == (0.5, 2.0)

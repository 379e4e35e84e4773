"""🎲 Another try: the button under every reply, and `/colorize seed:`.

The fake Discord has no component support of its own (no click helper; it does not keep
a message's components). These tests read the components the bot sent from the request
bodies (a spy on the fake's body reader) and click them by dispatching a real
MESSAGE_COMPONENT interaction through the fake's gateway, so discord.py's own routing
(custom_id template -> `AnotherTryButton`) runs, also in a bot started after the reply.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.another_try import AnotherTryButton, another_try_view, custom_id
from bot.ratelimit import RateLimiter
from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, eventually, page_file, start_bot, stop_bot
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, FakeUser
from tests.fakediscord.payloads import snowflake
from tests.fakediscord.server import CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE

MESSAGE_COMPONENT = 3
BUTTON = 2


def test_the_view_is_persistent_and_names_its_page():
    view = another_try_view(1234)
    assert view.timeout is None and view.is_persistent()
    [button] = view.children
    assert button.custom_id == custom_id(1234) == "colorbot:another-try:1234"
    assert button.item.label == "Another try" and str(button.item.emoji) == "🎲"
    match = AnotherTryButton.__discord_ui_compiled_template__.fullmatch(custom_id(1234))
    assert match is not None and match["page_id"] == "1234"


@pytest.fixture
def sent_components(fake: FakeDiscord, monkeypatch) -> list[list[dict[str, Any]]]:
    """The `components` of every message body the bot sent (the fake drops them)."""
    seen: list[list[dict[str, Any]]] = []
    read_body = fake._read_body

    async def spy(request):
        body, files = await read_body(request)
        if body.get("components"):
            seen.append(body["components"])
        return body, files

    monkeypatch.setattr(fake, "_read_body", spy)
    return seen


def button_for(sent: list[list[dict[str, Any]]], page_id: int) -> list[dict[str, Any]]:
    """The components (action rows) the bot sent carrying page `page_id`'s button."""
    for components in sent:
        ids = [c.get("custom_id") for row in components for c in row.get("components", [])]
        if custom_id(page_id) in ids:
            return components
    raise AssertionError(f"no button for page {page_id} in {sent}")


async def click(fake: FakeDiscord, user: FakeUser, message: FakeMessage,
                components: list[dict[str, Any]], button_id: str) -> FakeInteraction:
    """`user` clicks the button `button_id` under `message` (which shows `components`)."""
    channel = fake.channels[message.channel_id]
    guild = fake.guilds[channel.guild_id]
    interaction = FakeInteraction(id=snowflake(), token=f"itoken-{snowflake()}",
                                  type=MESSAGE_COMPONENT, user=user, channel_id=channel.id,
                                  name="")
    fake.interactions[interaction.token] = interaction
    member = user.member()
    member["permissions"] = str(user.permissions)
    await fake.dispatch("INTERACTION_CREATE", {
        "id": str(interaction.id),
        "application_id": str(fake.application_id),
        "type": MESSAGE_COMPONENT,
        "data": {"custom_id": button_id, "component_type": BUTTON},
        "message": {**message.payload, "components": components},
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": channel.payload(),
        "member": member,
        "token": interaction.token,
        "version": 1,
        "app_permissions": str(guild.everyone_permissions),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": guild.filesize_limit,
    })
    return interaction


async def answer(fake: FakeDiscord, interaction: FakeInteraction) -> FakeMessage:
    """The message the bot answered a click with, once it has its reactions."""
    await fake.wait_until(lambda: interaction.followup_ids, 60)
    message = fake.messages[interaction.followup_ids[0]]
    legend = [line for line in message.content.splitlines() if line.startswith("Vote")]
    members = legend[0].count(" **") if legend else 0
    await fake.wait_until(
        lambda: len(fake.reactions_on(message.id, fake.bot_user.id)) >= members, 30)
    return message



@E2E
async def test_posted_page_reply_has_the_button_and_a_click_after_a_restart_recolors(
        world, settings, worker, database, sent_components):
    fake = world.fake
    first = make_bot(settings, worker, database)
    task = await start_bot(first, fake)
    posted = await fake.post_message(world.coloring, world.alice, files=[page_file()])
    reply = await world.reply_to(posted)
    original = await database.reply_target(reply.id)
    components = button_for(sent_components, original.page.id)
    await stop_bot(first, task)

    # A new bot object has nothing of the first in memory, as after a restart.
    second = make_bot(settings, worker, database)
    task = await start_bot(second, fake)
    try:
        interaction = await click(fake, world.bob, reply, components, custom_id(original.page.id))
        await fake.wait_until(lambda: interaction.callbacks, 10)
        kind, _, after = interaction.callbacks[0]
        assert kind == DEFERRED_CHANNEL_MESSAGE and after < 3.0
        retry = await answer(fake, interaction)

        assert retry.id != reply.id and "Another try" in retry.content
        assert "Vote for your favorite" in retry.content
        assert [f.filename for f in retry.files] == [
            "page-family.png", "page-openmoji.png", "page-fluent.png", "page-clipart.png",
            "page-artworks.png"]
        assert sorted(fake.reactions_on(retry.id, fake.bot_user.id)) == sorted("😀🌈📎🎨")

        # Recorded like any reply: the same stored image, its colorings under the new
        # message, each with the seed it was colored with (also in the text).
        target = await database.reply_target(retry.id)
        assert target.page.sha256 == original.page.sha256
        assert target.page.id != original.page.id and target.page.source == "retry"
        assert target.page.author_id == world.alice.id
        seeds = {c.parameters.get("seed") for c in target.colorings.values()}
        assert len(seeds) == 1
        [seed] = seeds
        assert isinstance(seed, int) and 0 <= seed < 2**31 and f"seed {seed}" in retry.content
        assert set(target.members.values()) == {"openmoji", "fluent", "clipart", "artworks"}

        # The retry carries a button of its own, and its reactions vote.
        button_for(sent_components, target.page.id)
        await fake.react(world.carol, retry, "📎")
        live = await eventually(lambda: database.live_votes(page_id=target.page.id))
        assert [(v.user_id, v.coloring_id) for v in live] == [
            (world.carol.id, target.colorings["📎"].id)]
    finally:
        await stop_bot(second, task)


@E2E
async def test_colorize_seed_is_recorded_and_one_member_retries_that_member(
        world, bot, database, sent_components):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file("cat.png"), "model": "fluent",
                                    "strength": 1.5, "seed": 777})
    message = await answer(fake, interaction)
    target = await database.reply_target(message.id)
    assert target.colorings["🌈"].parameters == {"strength": 1.5, "seed": 777}
    components = button_for(sent_components, target.page.id)

    retry_click = await click(fake, world.bob, message, components, custom_id(target.page.id))
    retry = await answer(fake, retry_click)
    again = await database.reply_target(retry.id)
    assert again.members == {"🌈": "fluent"}  # the member of the reply clicked
    assert again.colorings["🌈"].parameters["strength"] == 1.5
    assert "**fluent** colored it again" in retry.content
    assert [f.filename for f in retry.files] == ["cat-fluent.png"]


@E2E
async def test_colorize_without_seed_records_none(world, bot, database):
    interaction = await world.fake.slash(world.alice, world.general, "colorize",
                                         {"page": page_file(), "model": "clipart"})
    message = await answer(world.fake, interaction)
    target = await database.reply_target(message.id)
    assert target.colorings["📎"].parameters == {"strength": 1.0}


@E2E
async def test_colorize_refuses_a_seed_out_of_range(world, bot):
    command = world.fake.command("colorize")
    seed = next(o for o in command["options"] if o["name"] == "seed")
    assert seed["min_value"] == 0 and seed["max_value"] == 2**31 - 1
    assert not seed.get("required") and "same number" in seed["description"]


@E2E
async def test_clicks_are_rate_limited_like_pages(world, bot, database, sent_components):
    fake = world.fake
    posted = await fake.post_message(world.coloring, world.alice, files=[page_file(seed=2)])
    reply = await world.reply_to(posted)
    page_id = (await database.reply_target(reply.id)).page.id
    components = button_for(sent_components, page_id)
    bot.rate_limiter = RateLimiter(1, 3600)

    first = await click(fake, world.bob, reply, components, custom_id(page_id))
    await answer(fake, first)
    second = await click(fake, world.bob, reply, components, custom_id(page_id))
    await fake.wait_until(lambda: second.callbacks, 10)
    kind, data, _ = second.callbacks[0]
    assert kind == CHANNEL_MESSAGE and data.get("flags", 0) & 64  # only bob sees it
    assert "Slow down" in data["content"]
    assert len(await database.pages()) == 2  # the page and one retry, no more


@E2E
async def test_a_forgotten_page_gets_a_kind_answer(world, bot, database, sent_components):
    fake = world.fake
    posted = await fake.post_message(world.coloring, world.alice, files=[page_file(seed=4)])
    reply = await world.reply_to(posted)
    page_id = (await database.reply_target(reply.id)).page.id
    components = button_for(sent_components, page_id)
    await database.forget_user(world.alice.id)

    interaction = await click(fake, world.bob, reply, components, custom_id(page_id))
    await fake.wait_until(lambda: interaction.followup_ids, 30)
    message = fake.messages[interaction.followup_ids[0]]
    assert "don't have that page any more" in message.content
    assert message.files == []

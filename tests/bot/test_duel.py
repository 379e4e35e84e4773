"""Duels through the fake Discord: two anonymous colorings, A / B / Tie buttons, the
names revealed to the voter after the vote, the pair recorded; buttons that keep
working after a restart; the "Duel" button under a family reply; the `/duels` board.

Clicks are real MESSAGE_COMPONENT interactions sent through the fake's gateway
(`FakeDiscord.click`), so discord.py's own routing (custom_id template -> button class)
runs, also in a bot started after the duel was posted.
"""

from __future__ import annotations

from bot.another_try import reply_view
from bot.duel import (
    DUEL_TEXT,
    DuelStartButton,
    DuelVoteButton,
    duel_view,
    start_id,
    vote_id,
)
from db.duels import duel_pairs, get_duel
from db.ratelimits import counted
from tests.bot.conftest import make_bot
from tests.bot.helpers import E2E, MEMBERS, eventually, page_file, start_bot, stop_bot
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, StoredFile
from tests.fakediscord.server import CHANNEL_MESSAGE

NAMES = [name for name, _ in MEMBERS]
EPHEMERAL = 64


def test_the_duel_view_is_persistent_with_a_b_and_tie():
    view = duel_view(42)
    assert view.timeout is None and view.is_persistent()
    assert [b.custom_id for b in view.children] == [
        "colorbot:duel:42:a", "colorbot:duel:42:b", "colorbot:duel:42:tie"]
    assert [b.item.label for b in view.children] == ["A", "B", "Tie"]
    match = DuelVoteButton.__discord_ui_compiled_template__.fullmatch(vote_id(42, "tie"))
    assert match is not None and (match["duel_id"], match["choice"]) == ("42", "tie")
    assert DuelVoteButton.__discord_ui_compiled_template__.fullmatch("colorbot:duel:42:c") is None
    start = DuelStartButton.__discord_ui_compiled_template__.fullmatch(start_id(7))
    assert start is not None and start["page_id"] == "7"


def test_a_reply_gets_the_duel_button_only_with_two_colorings_or_more():
    assert [b.custom_id for b in reply_view(5, 4).children] == [
        "colorbot:another-try:5", "colorbot:duel-from:5"]
    assert [b.custom_id for b in reply_view(5, 1).children] == ["colorbot:another-try:5"]


async def answered(fake: FakeDiscord, interaction: FakeInteraction,
                   timeout: float = 60) -> FakeMessage:
    """The message a deferred interaction was finally answered with."""
    await fake.wait_until(lambda: interaction.followup_ids, timeout)
    return fake.messages[interaction.followup_ids[0]]


async def clicked(fake: FakeDiscord, interaction: FakeInteraction) -> tuple[int, dict]:
    """(callback type, data) of the bot's answer to a click."""
    await fake.wait_until(lambda: interaction.callbacks, 15)
    kind, data, _ = interaction.callbacks[0]
    return kind, data


def duel_id_of(fake: FakeDiscord, message: FakeMessage) -> int:
    """The duel a message's A / B / Tie buttons vote in."""
    [duel_id] = {int(custom_id.split(":")[2]) for custom_id in fake.buttons(message)}
    return duel_id


def assert_anonymous(message: FakeMessage) -> None:
    """Nothing in the duel message names a member: text, file names, buttons."""
    shown = message.content + " ".join(f.filename for f in message.files)
    shown += " ".join(str(c) for c in message.payload["components"])
    for name, emoji in MEMBERS:
        assert name not in shown and emoji not in shown, (name, shown)


@E2E
async def test_duel_anonymous_vote_names_revealed_pair_recorded_across_a_restart(
        world, settings, worker, database):
    fake = world.fake
    first = make_bot(settings, worker, database)
    task = await start_bot(first, fake)
    try:
        interaction = await fake.slash(world.alice, world.general, "duel",
                                       {"page": page_file("cat.png")})
        message = await answered(fake, interaction)
        assert message.content == DUEL_TEXT
        assert [f.filename for f in message.files] == ["duel.png", "duel-A.png", "duel-B.png"]
        assert_anonymous(message)
        duel_id = duel_id_of(fake, message)
        assert sorted(fake.buttons(message)) == sorted(
            vote_id(duel_id, c) for c in ("a", "b", "tie"))
        duel = await get_duel(database, duel_id)
        assert duel.message_id == message.id
        assert duel.a.member != duel.b.member and {duel.a.member, duel.b.member} <= set(NAMES)
        # The files are those two colorings, A first.
        store = database.store
        assert message.files[1].data == store.get(duel.a.sha256)
        assert message.files[2].data == store.get(duel.b.sha256)
        # No reactions: a reaction would give a member's emoji (its name) away.
        assert fake.reactions_on(message.id) == []
    finally:
        await stop_bot(first, task)

    # A new bot object knows nothing of the first, as after a restart.
    second = make_bot(settings, worker, database)
    task = await start_bot(second, fake)
    try:
        vote = await fake.click(world.bob, message, vote_id(duel_id, "a"))
        kind, data = await clicked(fake, vote)
        assert kind == CHANNEL_MESSAGE and data["flags"] & EPHEMERAL  # only bob sees it
        assert "You picked **A**" in data["content"]
        assert f"A was {duel.a.emoji} **{duel.a.member}**" in data["content"]
        assert f"B was {duel.b.emoji} **{duel.b.member}**" in data["content"]
        assert fake.messages[message.id].content == DUEL_TEXT  # still anonymous for others

        [pair] = await duel_pairs(database)
        assert (pair.user_id, pair.choice, pair.winner, pair.loser) == (
            world.bob.id, "a", duel.a.member, duel.b.member)
        assert pair.guild_id == world.guild.id

        # Bob changes his mind: his vote is replaced, not added.
        again = await fake.click(world.bob, message, vote_id(duel_id, "b"))
        _, data = await clicked(fake, again)
        assert "Changed your vote from **A** to **B**" in data["content"]
        tie = await fake.click(world.carol, message, vote_id(duel_id, "tie"))
        _, data = await clicked(fake, tie)
        assert "a **tie**" in data["content"] and "A 0 · B 1 · tie 1" in data["content"]
        pairs = await duel_pairs(database)
        assert sorted((p.user_id, p.choice) for p in pairs) == sorted(
            [(world.bob.id, "b"), (world.carol.id, "tie")])
    finally:
        await stop_bot(second, task)


@E2E
async def test_the_duel_button_under_a_family_reply_duels_two_of_its_colorings(
        world, bot, database):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file()})
    reply = await answered(fake, interaction)
    # The reply is recorded once sent: wait for it.
    target = await eventually(lambda: database.reply_target(reply.id),
                              lambda t: t is not None and len(t.colorings) == len(MEMBERS))
    page_id = target.page.id
    assert start_id(page_id) in fake.buttons(reply)

    click = await fake.click(world.bob, reply, start_id(page_id))
    duel_message = await answered(fake, click)
    assert duel_message.content == DUEL_TEXT
    assert_anonymous(duel_message)
    duel_id = duel_id_of(fake, duel_message)
    duel = await get_duel(database, duel_id)
    shown = {c.id for c in target.colorings.values()}
    assert duel.page_id == page_id and {duel.a.coloring_id, duel.b.coloring_id} <= shown

    vote = await fake.click(world.carol, duel_message, vote_id(duel_id, "b"))
    _, data = await clicked(fake, vote)
    assert f"B was {duel.b.emoji} **{duel.b.member}**" in data["content"]
    assert [(p.user_id, p.winner) for p in await duel_pairs(database)] == [
        (world.carol.id, duel.b.member)]
    # The family reply's reactions are untouched by the duel.
    assert await database.live_votes(page_id=page_id) == []


@E2E
async def test_one_member_replies_have_no_duel_button(world, bot, database):
    interaction = await world.fake.slash(world.alice, world.general, "colorize",
                                         {"page": page_file(), "model": "fluent"})
    reply = await answered(world.fake, interaction)
    page_id = (await eventually(lambda: database.reply_target(reply.id))).page.id
    assert list(world.fake.buttons(reply)) == ["colorbot:another-try:" + str(page_id)]


@E2E
async def test_a_vote_on_a_forgotten_duel_gets_a_kind_answer(world, bot, database):
    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "duel", {"page": page_file()})
    message = await answered(fake, interaction)
    duel_id = duel_id_of(fake, message)
    await database.forget_user(world.alice.id)  # the page's author: the duel goes too

    vote = await fake.click(world.bob, message, vote_id(duel_id, "a"))
    kind, data = await clicked(fake, vote)
    assert kind == CHANNEL_MESSAGE and data["flags"] & EPHEMERAL
    assert "This duel is gone" in data["content"]
    assert await duel_pairs(database) == []


@E2E
async def test_duel_refuses_a_text_file_without_counting_it(world, bot, database):
    interaction = await world.fake.slash(world.alice, world.general, "duel",
                                         {"page": StoredFile("notes.txt", b"hi", "text/plain")})
    message = await answered(world.fake, interaction)
    assert "can only color pictures" in message.content
    assert await counted(database, "pages", world.alice.id) == 0


@E2E
async def test_the_duels_board_ranks_head_to_head(world, bot, database):
    fake = world.fake
    empty = await fake.slash(world.alice, world.general, "duels")
    assert "No duel votes yet" in (await answered(fake, empty)).content

    interaction = await fake.slash(world.alice, world.general, "duel", {"page": page_file()})
    message = await answered(fake, interaction)
    duel_id = duel_id_of(fake, message)
    duel = await get_duel(database, duel_id)
    for user in (world.alice, world.bob, world.carol):
        await clicked(fake, await fake.click(user, message, vote_id(duel_id, "a")))

    board = await answered(fake, await fake.slash(world.bob, world.general, "duels"))
    lines = board.content.splitlines()
    assert lines[0].startswith("**Head-to-head board** (head to head")
    assert f"**{duel.a.member}**" in lines[1] and "won 3, tied 0, lost 0 of 3 duels" in lines[1]
    assert f"**{duel.b.member}**" in lines[2] and "95%" in lines[2]
    assert f"{duel.a.member} beat {duel.b.member} 3–0" in board.content
    assert [f.filename for f in board.files] == ["duels.png"]


@E2E
async def test_the_duel_button_on_a_forgotten_page_and_when_slowed_down(world, bot, database):
    from bot.ratelimit import RateLimiter

    fake = world.fake
    interaction = await fake.slash(world.alice, world.general, "colorize",
                                   {"page": page_file(seed=6)})
    reply = await answered(fake, interaction)
    page_id = (await eventually(lambda: database.reply_target(reply.id))).page.id
    await database.forget_user(world.alice.id)
    click = await fake.click(world.bob, reply, start_id(page_id))
    assert "don't have that page any more" in (await answered(fake, click)).content

    bot.rate_limiter = RateLimiter(1, 3600)
    await bot.rate_limiter.hit(world.carol.id)
    slowed = await fake.click(world.carol, reply, start_id(page_id))
    kind, data = await clicked(fake, slowed)
    assert kind == CHANNEL_MESSAGE and data["flags"] & EPHEMERAL
    assert "Slow down" in data["content"]

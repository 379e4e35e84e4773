"""Duels, the Chatbot Arena way: two colorings of one page, without names, and three
buttons (A, B, tie). Whoever votes is told who painted what; nobody sees the names
before voting, so the vote is about the pictures, not the painters.

A duel vote compares exactly the two colorings shown: one clean head-to-head pair
(db/duels.py keeps them; bot/duel_board.py ranks the members from them). One vote per
person per duel: clicking another button replaces the vote.

Buttons are `discord.ui.DynamicItem`s whose custom_id carries what a click needs
(`colorbot:duel:<duel id>:<a|b|tie>`, `colorbot:duel-from:<page id>`), registered by
the duel cog, so clicks on messages sent before a restart still count.

Duels start two ways:
- `/duel page:<image>`: two members picked at random color the page (bot/cogs/duel.py);
- the "Duel" button under a family reply: two of that reply's colorings, picked at
  random. People may have seen those with names just above, so `/duel` is the blind one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.coloring import DEFAULT_FILESIZE_LIMIT, check_rate, discord_files
from bot.errors import SlowDown, UserError, report_interaction_error
from bot.files import ImageFile, fit_images
from bot.sheet import contact_sheet_png

if TYPE_CHECKING:
    from bot.app import ColorBot
    from db.duels import DuelInfo, DuelSide, DuelVoteResult

log = logging.getLogger(__name__)

VOTE_PREFIX = "colorbot:duel:"
START_PREFIX = "colorbot:duel-from:"
CHOICES = {"a": "A", "b": "B", "tie": "Tie"}
START_LABEL, START_EMOJI = "Duel", "🆚"

DUEL_TEXT = (
    "🆚 **Duel!** Two family members colored this page. Which one do you like better?\n"
    "Vote **A**, **B** or **Tie**: I'll tell you who painted what once you have voted."
)


class NeedTwo(UserError):
    def __init__(self) -> None:
        super().__init__("A duel needs two colorings of the page, and I only have one here.")


class DuelGone(UserError):
    def __init__(self) -> None:
        super().__init__("This duel is gone (its page may have been forgotten), "
                         "so I can't count that vote. Start a new one with `/duel`!")


class DuelPageGone(UserError):
    def __init__(self) -> None:
        super().__init__("I don't have that page any more (it may have been forgotten), "
                         "so I can't start a duel with it. Try `/duel` with the picture.")


def vote_id(duel_id: int, choice: str) -> str:
    return f"{VOTE_PREFIX}{duel_id}:{choice}"


def start_id(page_id: int) -> str:
    return f"{START_PREFIX}{page_id}"


class DuelVoteButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(VOTE_PREFIX) + r"(?P<duel_id>[0-9]{1,20}):(?P<choice>a|b|tie)",
):
    """One of a duel's three buttons; rebuilt from its custom_id on every click."""

    def __init__(self, duel_id: int, choice: str) -> None:
        style = discord.ButtonStyle.secondary if choice == "tie" else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=CHOICES[choice], style=style,
                                           custom_id=vote_id(duel_id, choice)))
        self.duel_id = duel_id
        self.choice = choice

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction,
                             item: discord.ui.Item[Any], match: re.Match[str]) -> DuelVoteButton:
        return cls(int(match["duel_id"]), match["choice"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await vote(interaction.client, interaction, self.duel_id, self.choice)  # type: ignore[arg-type]


class DuelStartButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(START_PREFIX) + r"(?P<page_id>[0-9]{1,20})",
):
    """The "Duel" button under a family reply: two of its colorings, without names."""

    def __init__(self, page_id: int) -> None:
        super().__init__(discord.ui.Button(label=START_LABEL, emoji=START_EMOJI,
                                           style=discord.ButtonStyle.secondary,
                                           custom_id=start_id(page_id)))
        self.page_id = page_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction,
                             item: discord.ui.Item[Any], match: re.Match[str]
                             ) -> DuelStartButton:
        return cls(int(match["page_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await duel_from_reply(interaction.client, interaction, self.page_id)  # type: ignore[arg-type]


def duel_view(duel_id: int) -> discord.ui.View:
    """A, B and Tie: persistent (no timeout, stable custom_ids)."""
    view = discord.ui.View(timeout=None)
    for choice in CHOICES:
        view.add_item(DuelVoteButton(duel_id, choice))
    return view


def reveal(result: DuelVoteResult) -> str:
    """What a voter reads after voting: their vote, who painted what, the tally."""
    a, b = result.duel.a, result.duel.b
    picked = {"a": "**A**", "b": "**B**", "tie": "a **tie**"}
    if result.status == "changed" and result.previous:
        first = f"Changed your vote from {picked[result.previous]} to {picked[result.choice]}."
    elif result.status == "unchanged":
        first = f"You had already voted {picked[result.choice]}; your vote stands."
    else:
        first = f"Thanks for voting! You picked {picked[result.choice]}."
    t = result.tally
    return (f"{first}\nA was {a.emoji} **{a.member}** · B was {b.emoji} **{b.member}**.\n"
            f"Votes so far: A {t.a} · B {t.b} · tie {t.tie}.")


async def vote(bot: ColorBot, interaction: discord.Interaction, duel_id: int,
               choice: str) -> None:
    """A click on A, B or Tie: record it (replacing the clicker's earlier vote in this
    duel) and tell the clicker, and only them, who painted what."""
    from db import NotFound
    from db.duels import cast_duel_vote

    try:
        try:
            result = await cast_duel_vote(bot.store, duel_id, interaction.user.id, choice)
        except NotFound:
            raise DuelGone() from None
        log.info("duel %s: %s votes %s (%s)", duel_id, interaction.user.id, choice,
                 result.status)
        await interaction.response.send_message(reveal(result), ephemeral=True)
    except Exception as exc:  # noqa: BLE001 - one place reports it (kind text, log)
        await report_interaction_error(interaction, exc)


def pick_pair(sides: list[DuelSide], rng: random.Random | None = None
              ) -> tuple[DuelSide, DuelSide]:
    """Two colorings by two different members, picked at random, in random order (A
    first). A member with several colorings of the page takes part with its newest."""
    rng = rng or random.Random()
    newest: dict[str, DuelSide] = {}
    for side in sides:  # oldest first: the newest wins
        newest[side.member] = side
    if len(newest) < 2:
        raise NeedTwo()
    a, b = rng.sample(sorted(newest.values(), key=lambda s: s.coloring_id), 2)
    return a, b


def duel_files(page_png: bytes, a_png: bytes, b_png: bytes,
               filesize_limit: int = DEFAULT_FILESIZE_LIMIT) -> list[ImageFile]:
    """The page with A and B side by side (labelled A and B, nothing else), then A and
    B at full size; fitted into one message."""
    sheet = contact_sheet_png(page_png, [("A", "", a_png), ("B", "", b_png)])
    files = [ImageFile("duel.png", sheet), ImageFile("duel-A.png", a_png),
             ImageFile("duel-B.png", b_png)]
    return fit_images(files, filesize_limit)


async def post_duel(
    bot: ColorBot,
    interaction: discord.Interaction,
    page_id: int,
    page_png: bytes,
    a: tuple[DuelSide, bytes],
    b: tuple[DuelSide, bytes],
) -> DuelInfo:
    """Record a duel between colorings `a` and `b` (side, PNG) of page `page_id` and
    answer the (deferred) interaction with it."""
    from db.duels import create_duel, set_duel_message

    duel = await create_duel(bot.store, page_id, a[0].coloring_id, b[0].coloring_id,
                             guild_id=interaction.guild_id, channel_id=interaction.channel_id)
    limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
    files = await asyncio.to_thread(duel_files, page_png, a[1], b[1], limit)
    message = await interaction.followup.send(DUEL_TEXT, files=discord_files(files),
                                              view=duel_view(duel.id), wait=True)
    await set_duel_message(bot.store, duel.id, message.id, message.channel.id)
    log.info("duel %s on page %s: %s vs %s", duel.id, page_id, a[0].member, b[0].member)
    return duel


async def duel_from_reply(bot: ColorBot, interaction: discord.Interaction,
                          page_id: int) -> None:
    """A click on 🆚 Duel under a family reply: two of its colorings, without names.

    It costs one page against the clicker's rate limit (it posts a new message)."""
    from db import NotFound
    from db.duels import page_sides

    try:
        await check_rate(bot, interaction.user.id)
    except SlowDown as exc:
        await interaction.response.send_message(str(exc), ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    try:
        store = bot.store
        try:
            page = await store.get_page(page_id)
        except NotFound:
            raise DuelPageGone() from None
        a, b = pick_pair(await page_sides(store, page_id))
        try:
            page_png, a_png, b_png = [
                await store.read_image(sha) for sha in (page.sha256, a.sha256, b.sha256)]
        except FileNotFoundError:
            raise DuelPageGone() from None
        await post_duel(bot, interaction, page_id, page_png, (a, a_png), (b, b_png))
    except Exception as exc:  # noqa: BLE001 - one place reports it (kind text, log)
        await report_interaction_error(interaction, exc)

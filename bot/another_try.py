"""🎲 Another try: a button under every reply that colors the same page again with a new
random seed (another plausible coloring), posted as a new reply people vote on like any
other.

The button is a `discord.ui.DynamicItem` whose custom_id carries the page id
(`colorbot:another-try:<page id>`). `ColorBot.setup_hook` registers the class, so a
click on a reply sent before a restart still finds its page: nothing about the message
has to be in memory. A click costs one page against the clicker's rate limit, like a
posted page.

The page's bytes come from the database's image store (every recorded page keeps its
image there). The retry is recorded the way any reply is: a new page row sharing the
stored file, and its colorings under the new message. A page row of its own gives the
retry its own votes: one live vote per person per page, so voting on the retry does
not take back a vote on the first reply.
"""

from __future__ import annotations

import logging
import random
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.coloring import (
    DEFAULT_FILESIZE_LIMIT,
    ColoredPage,
    PageRequest,
    check_rate,
    color_page,
    discord_files,
    finish_reply,
)
from bot.duel import DuelStartButton
from bot.errors import SlowDown, UserError, report_interaction_error
from models.options import SEED_LIMIT

if TYPE_CHECKING:
    from bot.app import ColorBot

log = logging.getLogger(__name__)

CUSTOM_ID_PREFIX = "colorbot:another-try:"
LABEL = "Another try"
EMOJI = "🎲"


class PageGone(UserError):
    def __init__(self) -> None:
        super().__init__("I don't have that page any more (it may have been forgotten), "
                         "so I can't color it again. Post it again to get new colorings.")


def custom_id(page_id: int) -> str:
    return f"{CUSTOM_ID_PREFIX}{page_id}"


class AnotherTryButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(CUSTOM_ID_PREFIX) + r"(?P<page_id>[0-9]{1,20})",
):
    """The 🎲 button for one stored page; rebuilt from its custom_id on every click."""

    def __init__(self, page_id: int) -> None:
        super().__init__(discord.ui.Button(
            label=LABEL, emoji=EMOJI, style=discord.ButtonStyle.secondary,
            custom_id=custom_id(page_id),
        ))
        self.page_id = page_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction,
                             item: discord.ui.Item[Any], match: re.Match[str]
                             ) -> AnotherTryButton:
        return cls(int(match["page_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await another_try(interaction.client, interaction, self.page_id)  # type: ignore[arg-type]


def reply_view(page_id: int, colorings: int) -> discord.ui.View:
    """The buttons under a colored page's reply: 🎲 Another try, and 🆚 Duel when the
    reply shows two colorings or more."""
    view = discord.ui.View(timeout=None)
    view.add_item(AnotherTryButton(page_id))
    if colorings >= 2:
        view.add_item(DuelStartButton(page_id))
    return view


def another_try_view(page_id: int) -> discord.ui.View:
    """The view under a colored page's reply: persistent (no timeout, a stable custom_id)."""
    view = discord.ui.View(timeout=None)
    view.add_item(AnotherTryButton(page_id))
    return view


async def another_try(bot: ColorBot, interaction: discord.Interaction, page_id: int,
                      seed: int | None = None) -> None:
    """A click: color page `page_id` again (a random seed unless given) and reply with it.

    Every failure ends in one kind message to the clicker, the details in the log.
    """
    try:
        await check_rate(bot, interaction.user.id)  # a retry costs what a posted page costs
    except SlowDown as exc:
        await interaction.response.send_message(str(exc), ephemeral=True)
        return
    # Acknowledge first: Discord gives us 3 s, coloring takes longer.
    await interaction.response.defer(thinking=True)
    try:
        limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
        colored = await recolor(
            bot, page_id, user_id=interaction.user.id,
            channel_id=interaction.channel_id,
            shown_on=interaction.message.id if interaction.message else None,
            filesize_limit=limit, seed=seed,
        )
        message = await interaction.followup.send(
            colored.content, files=discord_files(colored.files),
            view=reply_view(colored.page_id, len(colored.colorings)), wait=True,
        )
        await finish_reply(bot, colored, message.channel.id, message.id)
        log.info("another try of page %s (seed %s) by %s in %.0f ms", page_id,
                 colored.parameters.get("seed"), interaction.user.id, colored.ms)
    except Exception as exc:  # noqa: BLE001 - one place reports it (kind text, log)
        await report_interaction_error(interaction, exc)


async def recolor(
    bot: ColorBot,
    page_id: int,
    *,
    user_id: int,
    channel_id: int | None,
    shown_on: int | None = None,
    filesize_limit: int = DEFAULT_FILESIZE_LIMIT,
    seed: int | None = None,
) -> ColoredPage:
    """Color stored page `page_id` again with `seed` (random when None) and build the
    reply (recorded, not sent).

    The members and strength are those of the reply the button was clicked on
    (`shown_on`): a one-member reply tries that member again, a family reply the whole
    family.
    """
    from db import NotFound

    try:
        stored = await bot.store.get_page(page_id)
        data = await bot.store.read_image(stored.sha256)
    except (NotFound, FileNotFoundError):
        raise PageGone() from None
    members, strength = await _shown_with(bot, shown_on, page_id)
    if seed is None:
        seed = random.randrange(SEED_LIMIT)
    page = PageRequest(
        data=data, filename=stored.filename or "page.png", guild_id=stored.guild_id,
        channel_id=channel_id, message_id=None,
        # The page stays its author's: /forget by them removes the retries too.
        author_id=stored.author_id if stored.author_id is not None else user_id,
        source="retry",
    )
    who = f"**{members[0]}**" if members else "The family"
    return await color_page(
        bot, page, members=members, strength=strength, seed=seed,
        filesize_limit=filesize_limit,
        title=f"{EMOJI} Another try! {who} colored it again (seed {seed}).",
    )


async def _shown_with(bot: ColorBot, message_id: int | None,
                      page_id: int) -> tuple[list[str] | None, float]:
    """(members, strength) of the reply `message_id`: one member or None (the family)."""
    if message_id is None:
        return None, 1.0
    target = await bot.store.reply_target(message_id)
    if target is None or target.page.id != page_id:
        return None, 1.0
    known = {m["name"] for m in bot.family_members}
    shown = [m for m in target.members.values() if m in known]
    strength = _strength(next(iter(target.colorings.values())).parameters)
    return (shown if len(shown) == 1 else None), strength


def _strength(parameters: dict[str, Any] | None) -> float:
    value = (parameters or {}).get("strength", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 1.0
    return float(value)

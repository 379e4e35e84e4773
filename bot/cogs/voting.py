"""Votes are reactions on our replies: one live vote per user per page.

Raw reaction events, so votes on messages from before a restart count: everything is
looked up by message id in the database, never in discord.py's message cache.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import ColorBot

log = logging.getLogger(__name__)


class Voting(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    def _member_emoji(self, payload: discord.RawReactionActionEvent) -> str | None:
        """The ladder of early returns shared by add and remove; the emoji when it may
        be a vote."""
        if payload.guild_id is None:
            return None  # not in a server
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return None  # our own reactions, added under each reply
        if payload.message_author_id is not None and self.bot.user is not None \
                and payload.message_author_id != self.bot.user.id:
            return None  # not a reply of ours (Discord tells us the author on add)
        if payload.emoji.id is not None:
            return None  # custom server emoji are never family members
        emoji = str(payload.emoji)
        if self.bot.member_by_emoji(emoji) is None:
            return None  # not a family member's emoji
        return emoji

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = self._member_emoji(payload)
        if emoji is None:
            return
        try:
            result = await self.bot.store.cast_vote(payload.message_id, emoji, payload.user_id)
        except Exception:
            log.exception("vote by %s on %s not recorded", payload.user_id, payload.message_id)
            return
        log.debug("vote %s by %s on %s: %s", emoji, payload.user_id, payload.message_id,
                  result.status)
        if result.status == "moved" and result.previous_emoji:
            await self._take_back(payload, result.previous_emoji)

    async def _take_back(self, payload: discord.RawReactionActionEvent, emoji: str) -> None:
        """Show one live vote: remove the user's reaction from the coloring the vote
        left (needs Manage Messages; without it the old reaction simply stays)."""
        message = self.bot.get_partial_messageable(payload.channel_id).get_partial_message(
            payload.message_id)
        try:
            await message.remove_reaction(emoji, discord.Object(payload.user_id))
        except discord.HTTPException:
            log.debug("could not take back %s of %s", emoji, payload.user_id)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        emoji = self._member_emoji(payload)
        if emoji is None:
            return
        try:
            await self.bot.store.remove_vote(payload.message_id, emoji, payload.user_id)
        except Exception:
            log.exception("vote removal by %s on %s not recorded", payload.user_id,
                          payload.message_id)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Voting(bot))

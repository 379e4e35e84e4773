"""`/forget`: delete everything we keep about the caller."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot


class Forget(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    @app_commands.command(name="forget")
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete your pages, their colorings and your votes from the bot's records."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        # The rate-limit window stays: forgetting is not a way to post more pages.
        result = await self.bot.store.forget_user(interaction.user.id)
        await interaction.followup.send(
            f"Done: I forgot {result.pages} page(s), {result.colorings} coloring(s) and "
            f"{result.votes} vote(s) of yours.", ephemeral=True)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Forget(bot))

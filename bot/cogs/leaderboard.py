"""`/leaderboard`: which member people like best, from the votes."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot


class Leaderboard(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    @app_commands.command(name="leaderboard")
    async def leaderboard(self, interaction: discord.Interaction) -> None:
        """The family ranked by your votes in this server."""
        await interaction.response.defer(thinking=True)
        standings = await self.bot.leaderboard.standings(interaction.guild_id)
        if not standings:
            await interaction.followup.send("No votes yet: react to a coloring to vote!")
            return
        emoji = {m["name"]: m.get("emoji", "") for m in self.bot.family_members}
        lines = [f"**Leaderboard** ({self.bot.leaderboard.method})"]
        for rank, row in enumerate(standings, 1):
            lines.append(f"{rank}. {emoji.get(row.member, '')} **{row.member}** - {row.detail}")
        await interaction.followup.send("\n".join(lines)[:2000])


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Leaderboard(bot))

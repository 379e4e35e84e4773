"""`/leaderboard`: which member people like best, from the votes."""

from __future__ import annotations

import asyncio
import io

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
        source = self.bot.leaderboard
        standings = await source.standings(interaction.guild_id)
        if not standings:
            await interaction.followup.send("No votes yet: react to a coloring to vote!")
            return
        emoji = {m["name"]: m.get("emoji", "") for m in self.bot.family_members}
        lines = [f"**Leaderboard** ({source.method})"]
        for rank, row in enumerate(standings, 1):
            lines.append(f"{rank}. {emoji.get(row.member, '')} **{row.member}** - {row.detail}")
        meaning = getattr(source, "meaning", "")
        if meaning:
            lines.append(f"-# {meaning[:1].upper()}{meaning[1:]}.")
        judge_standings = getattr(source, "judge_standings", None)
        if judge_standings is not None:
            judged, about = await judge_standings(interaction.guild_id)
            if judged:
                lines.append(f"**The judge's board** ({about})")
                for rank, row in enumerate(judged, 1):
                    lines.append(
                        f"{rank}. {emoji.get(row.member, '')} **{row.member}** - {row.detail}"
                    )
        # Drawing is quick, but it is Pillow work: keep it off the event loop.
        chart = await asyncio.to_thread(source.chart_png, standings)
        files = [discord.File(io.BytesIO(chart), filename="leaderboard.png")] if chart else []
        await interaction.followup.send("\n".join(lines)[:2000], files=files)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Leaderboard(bot))

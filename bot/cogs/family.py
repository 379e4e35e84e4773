"""`/family`: who colors your pages."""

from __future__ import annotations

from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot


def describe(member: dict) -> str:
    line = f"{member.get('emoji', '')} **{member['name']}** (v{member.get('version', 1)})"
    if member.get("description"):
        line += f" - {member['description']}"
    if member.get("trained_on"):
        line += f"\n   grew up on: {member['trained_on']}"
    return line


class Family(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    @app_commands.command(name="family")
    async def family(self, interaction: discord.Interaction) -> None:
        """Meet the family: each member, what it grew up on, and its version."""
        await interaction.response.defer(thinking=True)
        members = await self.bot.refresh_family()
        if not members:
            await interaction.followup.send("The family is still waking up. Try again soon.")
            return
        text = "**The family**\n" + "\n".join(describe(m) for m in members)
        files = []
        for member in members:  # growing-up pictures, when the worker is local
            picture = member.get("growing_up_path") or member.get("growing_up")
            if picture and Path(picture).is_file() and len(files) < 10:
                files.append(discord.File(picture, filename=f"{member['name']}-growing-up"
                                          f"{Path(picture).suffix}"))
        await interaction.followup.send(text[:2000], files=files)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Family(bot))

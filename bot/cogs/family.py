"""`/family`: who colors your pages."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot
from models.registry import FamilyError, Registry

log = logging.getLogger(__name__)
MAX_FILES = 10


def growing_up_pictures(family_path: str) -> dict[str, Path]:
    """Each member's growing-up picture (GIF of its training snapshots), from the family
    registry when the family's folder is reachable from this process (the worker's
    /v1/family gives no file paths). The registry is torch-free."""
    registry = Registry(family_path or None)
    try:
        members = registry.members()
    except FamilyError:
        return {}
    pictures = {}
    for member in members:
        picture = registry.root / member.growing_up if member.growing_up else None
        if picture is not None and picture.is_file():
            pictures[member.name] = picture
    return pictures


def describe(member: dict[str, Any]) -> str:
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
        pictures = growing_up_pictures(self.bot.settings.family_path)
        files: list[discord.File] = []
        limit = interaction.guild.filesize_limit if interaction.guild else 10 * 1024 * 1024
        total = 0
        for member in members:
            picture = pictures.get(member["name"])
            if picture is None or len(files) >= MAX_FILES:
                continue
            size = picture.stat().st_size
            if total + size > limit - 64 * 1024:
                continue  # a GIF too big to share today; the text still introduces it
            total += size
            files.append(discord.File(picture, filename=f"{member['name']}-growing-up"
                                      f"{picture.suffix}"))
        if files:
            text += "\n\nHow they grew up, epoch by epoch:"
        await interaction.followup.send(text[:2000], files=files)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Family(bot))

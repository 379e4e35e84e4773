"""`/gallery enable|disable`: show this server's pages on the public web page
(`colorbot web`), needs Manage Server."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot
from db.web_queries import set_gallery


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class GalleryCommands(commands.GroupCog, group_name="gallery"):
    """Show this server's pages in the public web gallery."""

    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="enable")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def enable(self, interaction: discord.Interaction) -> None:
        """Show this server's pages, their colorings and votes in the public web gallery."""
        assert interaction.guild is not None  # a guild_only group
        await set_gallery(self.bot.store, interaction.guild.id, True, name=interaction.guild.name)
        await interaction.response.send_message(
            "This server's pages, their colorings and vote counts now show in the public web "
            "gallery (never who posted or voted). Anyone can take their own pages out with "
            "`/forget`; `/gallery disable` hides them all again.")

    @app_commands.command(name="disable")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def disable(self, interaction: discord.Interaction) -> None:
        """Hide this server's pages from the public web gallery."""
        assert interaction.guild_id is not None  # a guild_only group
        await set_gallery(self.bot.store, interaction.guild_id, False)
        await interaction.response.send_message(
            "This server's pages are no longer shown in the public web gallery.")


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(GalleryCommands(bot))

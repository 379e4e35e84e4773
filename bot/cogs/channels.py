"""`/channel enable|disable`: where posted pages get colored (needs Manage Channels)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot


@app_commands.guild_only()
@app_commands.default_permissions(manage_channels=True)
class ChannelCommands(commands.GroupCog, group_name="channel"):
    """Choose the channels where posted pages are colored."""

    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="enable")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def enable(self, interaction: discord.Interaction) -> None:
        """Color every picture posted in this channel."""
        await self._set(interaction, True)
        await interaction.response.send_message(
            "Pages posted here will now be colored by the family. 🎨")

    @app_commands.command(name="disable")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def disable(self, interaction: discord.Interaction) -> None:
        """Stop coloring pictures posted in this channel."""
        await self._set(interaction, False)
        await interaction.response.send_message(
            "I won't color pages posted here any more. `/colorize` still works.")


    async def _set(self, interaction: discord.Interaction, enabled: bool) -> None:
        # A guild_only group: Discord sends these from a server channel only.
        assert interaction.guild_id is not None and interaction.channel_id is not None
        await self.bot.store.set_channel_enabled(interaction.guild_id, interaction.channel_id,
                                                 enabled, changed_by=interaction.user.id)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(ChannelCommands(bot))

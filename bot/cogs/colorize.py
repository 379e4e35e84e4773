"""`/colorize page:<attachment> model:<member> strength:<0.5-2.0> seed:<0-2147483647>`."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.another_try import reply_view
from bot.app import ColorBot
from bot.coloring import (
    DEFAULT_FILESIZE_LIMIT,
    PageRequest,
    check_rate,
    color_page,
    discord_files,
    finish_reply,
    read_attachment,
)
from bot.errors import UserError
from models.options import SEED_LIMIT

# What /colorize offers: a narrower range than a worker accepts (models.options).
MIN_STRENGTH, MAX_STRENGTH = 0.5, 2.0
MAX_SEED = SEED_LIMIT - 1


class Colorize(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    @app_commands.command(name="colorize")
    @app_commands.describe(
        page="the coloring page (an image)",
        model="one family member (leave empty for the whole family)",
        strength="how bold the colors are, 0.5 to 2.0 (default 1.0)",
        seed="another plausible coloring, the same for the same number "
        "(default: none, the most likely coloring)",
    )
    async def colorize(
        self,
        interaction: discord.Interaction,
        page: discord.Attachment,
        model: str | None = None,
        strength: app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH] = 1.0,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
    ) -> None:
        """Color a page with one family member, or with the whole family."""
        # Acknowledge first: Discord gives us 3 s, coloring takes longer.
        await interaction.response.defer(thinking=True)
        if not MIN_STRENGTH <= strength <= MAX_STRENGTH:  # Discord checks; a proxy may not
            raise UserError(f"Strength goes from {MIN_STRENGTH} (soft) to {MAX_STRENGTH} (bold).")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise UserError(f"A seed is a whole number from 0 to {MAX_SEED}.")
        members = None
        if model:
            known = {m["name"] for m in self.bot.family_members}
            if model not in known:
                raise UserError(
                    f"There is no family member called **{model}**. "
                    f"Try one of: {', '.join(sorted(known))}."
                )
            members = [model]
        await check_rate(self.bot, interaction.user.id)
        data = await read_attachment(self.bot, page)
        request = PageRequest(
            data=data, filename=page.filename, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, message_id=None, author_id=interaction.user.id,
            source="slash",
        )
        limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
        title = f"**{model}** colored it!" if model else ""
        colored = await color_page(self.bot, request, members=members, strength=float(strength),
                                   seed=seed, filesize_limit=limit, title=title)
        message = await interaction.followup.send(
            colored.content, files=discord_files(colored.files),
            view=reply_view(colored.page_id, len(colored.colorings)), wait=True,
        )
        await finish_reply(self.bot, colored, message.channel.id, message.id)

    @colorize.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        current = current.lower()
        matches = [m for m in self.bot.family_members if current in m["name"].lower()]
        # Names starting with what was typed first, then the family's order.
        matches.sort(key=lambda m: not m["name"].lower().startswith(current))
        return [
            app_commands.Choice(name=f"{m.get('emoji', '')} {m['name']}".strip(), value=m["name"])
            for m in matches
        ][:25]


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Colorize(bot))

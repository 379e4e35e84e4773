"""`/duel page:<image>`: two family members, picked at random, color the page, shown
without names (A / B / Tie buttons); `/duels`: the head-to-head board from those votes.

The buttons live in bot/duel.py; `setup` registers them by their custom_id templates,
so votes on duels sent before a restart still count.
"""

from __future__ import annotations

import asyncio
import io
import random
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import ColorBot
from bot.coloring import (
    DEFAULT_FILESIZE_LIMIT,
    PageRequest,
    check_attachment,
    check_rate,
    color_page,
    read_attachment,
)
from bot.duel import DuelStartButton, DuelVoteButton, NeedTwo, post_duel
from bot.duel_board import DuelBoard, head_to_head_records, head_to_head_rows

if TYPE_CHECKING:
    from db.duels import DuelSide

MAX_RECORDS = 10  # head-to-head lines shown under the board


class Duel(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot
        self.board = DuelBoard(bot.store)

    @app_commands.command(name="duel")
    @app_commands.describe(page="the coloring page (an image)")
    async def duel(self, interaction: discord.Interaction, page: discord.Attachment) -> None:
        """Two family members color your page without names: vote for the better one."""
        # Acknowledge first: Discord gives us 3 s, coloring takes longer.
        await interaction.response.defer(thinking=True)
        if not self.bot.family_members:
            await self.bot.refresh_family()  # started before the worker: one more try
        names = [m["name"] for m in self.bot.family_members]
        if len(names) < 2:
            raise NeedTwo()
        members = random.sample(names, 2)  # the first is A
        # What is not a picture never counts against the limit.
        check_attachment(page, self.bot.settings.max_upload_bytes)
        await check_rate(self.bot, interaction.user.id)
        data = await read_attachment(self.bot, page)
        request = PageRequest(
            data=data, filename=page.filename, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, message_id=None, author_id=interaction.user.id,
            source="duel",
        )
        limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
        colored = await color_page(self.bot, request, members=members, filesize_limit=limit)
        by_member = {c.member: c for c in colored.colorings}
        if any(name not in by_member for name in members):
            raise NeedTwo()
        sides = await self._record(colored.page_id, [by_member[m] for m in members],
                                   colored.parameters)
        await post_duel(self.bot, interaction, colored.page_id, data,
                        (sides[0], by_member[members[0]].png),
                        (sides[1], by_member[members[1]].png))

    async def _record(self, page_id: int, colorings: list[Any],
                      parameters: dict[str, Any]) -> list[DuelSide]:
        """Record the two colorings, linked to no reply message: reactions never vote
        in a duel (they would give the names away)."""
        from db import NewColoring
        from db.duels import page_sides

        rows = await self.bot.store.record_colorings(page_id, [
            NewColoring(member=c.member, version=c.version, emoji=c.emoji, image=c.png,
                        parameters=parameters, duration_ms=c.ms,
                        timings={"batch_size": getattr(c, "batch_size", 1)})
            for c in colorings
        ])
        by_id = {s.coloring_id: s for s in await page_sides(self.bot.store, page_id)}
        return [by_id[row.id] for row in rows]

    @app_commands.command(name="duels")
    async def duels(self, interaction: discord.Interaction) -> None:
        """The family ranked head to head, from the duels in this server."""
        await interaction.response.defer(thinking=True)
        pairs = await self.board.pairs(interaction.guild_id)
        if not pairs:
            await interaction.followup.send(
                "No duel votes yet: start a duel with `/duel` and vote A, B or Tie!")
            return
        rows = await asyncio.to_thread(head_to_head_rows, pairs, rounds=self.board.rounds)
        emoji = {m["name"]: m.get("emoji", "") for m in self.bot.family_members}
        lines = [f"**Head-to-head board** ({self.board.method})"]
        for row in rows:
            lines.append(f"{row.rank}. {emoji.get(row.member, '')} **{row.member}** - "
                         f"{row.detail}")
        records = head_to_head_records(pairs)[:MAX_RECORDS]
        if records:
            lines += ["", "Head to head: " + " · ".join(records)]
        lines.append("(`/leaderboard` shows the favourite share from reaction votes.)")
        chart = await asyncio.to_thread(self.board.chart_png, rows)
        files = [discord.File(io.BytesIO(chart), filename="duels.png")] if chart else []
        await interaction.followup.send("\n".join(lines)[:2000], files=files)


async def setup(bot: ColorBot) -> None:
    # Clicks on duel buttons find their duel by custom_id, also after a restart.
    bot.add_dynamic_items(DuelVoteButton, DuelStartButton)
    await bot.add_cog(Duel(bot))

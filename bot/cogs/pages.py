"""Pages posted in enabled channels: every image attachment is colored by the family."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import ColorBot
from bot.coloring import Page, check_rate, color_page, discord_files, finish_reply, read_attachment
from bot.errors import GENERIC_MESSAGE, user_message

log = logging.getLogger(__name__)


class Pages(commands.Cog):
    def __init__(self, bot: ColorBot) -> None:
        self.bot = bot

    async def channel_enabled(self, channel: discord.abc.GuildChannel) -> bool:
        """`/channel enable|disable` wins; otherwise channels named in the settings."""
        return await self.bot.store.is_channel_enabled(
            channel.guild.id, channel.id, channel.name, self.bot.settings.default_channels
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None or not message.attachments:
            return
        try:
            if not await self.channel_enabled(message.channel):  # type: ignore[arg-type]
                return
        except Exception:
            log.exception("could not tell whether channel %s is enabled", message.channel.id)
            return
        for attachment in message.attachments:
            await self.serve(message, attachment)

    async def serve(self, message: discord.Message, attachment: discord.Attachment) -> None:
        """Color one attachment and reply; any failure becomes a kind reply instead."""
        try:
            check_rate(self.bot, message.author.id)
            data = await read_attachment(attachment, self.bot.settings.max_upload_bytes)
            page = Page(
                data=data, filename=attachment.filename, guild_id=message.guild.id,  # type: ignore[union-attr]
                channel_id=message.channel.id, message_id=message.id,
                author_id=message.author.id,
            )
            async with message.channel.typing():
                colored = await color_page(
                    self.bot, page,
                    filesize_limit=message.guild.filesize_limit,  # type: ignore[union-attr]
                )
                reply = await message.reply(colored.content, files=discord_files(colored.files),
                                            mention_author=False)
            await finish_reply(self.bot, colored, reply.channel.id, reply.id)
            log.info("page %s in %s colored in %.0f ms", attachment.filename, message.channel.id,
                     colored.ms)
        except Exception as exc:
            text = user_message(exc)
            if text == GENERIC_MESSAGE:
                log.error("page %s failed", attachment.filename, exc_info=exc)
            else:
                log.info("page %s refused: %s", attachment.filename, text)
            try:
                await message.reply(text, mention_author=False)
            except discord.HTTPException:
                log.warning("could not reply to %s", message.id, exc_info=True)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Pages(bot))

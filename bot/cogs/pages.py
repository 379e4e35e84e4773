"""Pages posted in enabled channels: the family colors them, one reply per message.

A message is one request: it costs one page against the poster's rate limit, however
many attachments it carries, and gets exactly one reply. The first picture is colored;
the reply lists what was not (files that are not pictures, which never count against
the limit, and further pictures: one page per message, so every reply is one page to
vote on).
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.another_try import reply_view
from bot.app import ColorBot
from bot.coloring import (
    PageRequest,
    check_rate,
    color_page,
    discord_files,
    finish_reply,
    looks_like_image,
    read_attachment,
)
from bot.errors import GENERIC_MESSAGE, user_message

log = logging.getLogger(__name__)

# Filenames listed in one refusal line, at most (a message carries up to 10).
MAX_LISTED = 10


def _names(attachments: list[discord.Attachment]) -> str:
    names = [f"**{a.filename[:60]}**" for a in attachments[:MAX_LISTED]]
    return ", ".join(names)


def refusals(not_pictures: list[discord.Attachment],
             more_pictures: list[discord.Attachment]) -> list[str]:
    """The lines saying what this message's reply did not color, and why."""
    lines = []
    if not_pictures:
        lines.append(f"I can only color pictures, so I left {_names(not_pictures)} alone.")
    if more_pictures:
        lines.append(f"I color one page per message; please post {_names(more_pictures)} "
                     "on their own.")
    return lines


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
        await self.serve(message)

    async def serve(self, message: discord.Message) -> None:
        """Color the message's first picture and reply once; any failure becomes a kind
        reply instead."""
        pictures = [a for a in message.attachments if looks_like_image(a)]
        others = [a for a in message.attachments if not looks_like_image(a)]
        notes = refusals(others, pictures[1:])
        if not pictures:
            await self._reply(message, "\n".join(notes))
            return
        attachment = pictures[0]
        try:
            await check_rate(self.bot, message.author.id)
            data = await read_attachment(self.bot, attachment)
            page = PageRequest(
                data=data, filename=attachment.filename, guild_id=message.guild.id,  # type: ignore[union-attr]
                channel_id=message.channel.id, message_id=message.id,
                author_id=message.author.id,
            )
            async with message.channel.typing():
                colored = await color_page(
                    self.bot, page,
                    filesize_limit=message.guild.filesize_limit,  # type: ignore[union-attr]
                )
                content = "\n".join([colored.content, *notes])
                view = reply_view(colored.page_id, len(colored.colorings))
                reply = await message.reply(content, files=discord_files(colored.files),
                                            view=view, mention_author=False)
            await finish_reply(self.bot, colored, reply.channel.id, reply.id)
            log.info("page %s in %s colored in %.0f ms", attachment.filename, message.channel.id,
                     colored.ms)
        except Exception as exc:
            text = user_message(exc)
            if text == GENERIC_MESSAGE:
                log.error("page %s failed", attachment.filename, exc_info=exc)
            else:
                log.info("page %s refused: %s", attachment.filename, text)
            await self._reply(message, "\n".join([text, *notes]))

    async def _reply(self, message: discord.Message, text: str) -> None:
        try:
            await message.reply(text[:2000], mention_author=False)
        except discord.HTTPException:
            log.warning("could not reply to %s", message.id, exc_info=True)


async def setup(bot: ColorBot) -> None:
    await bot.add_cog(Pages(bot))

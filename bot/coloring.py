"""Coloring one page for Discord: checks, the worker call, the reply's files and text.

Shared by the pages cog (images posted in enabled channels) and `/colorize`: both check
the attachment, color it with the worker, record page and colorings, send one message
with the contact sheet and every member's coloring, and add one reaction per member.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import NotAnImage, SlowDown, TooLarge
from bot.files import MAX_FILES_PER_MESSAGE, ImageFile, fit_images
from bot.sheet import contact_sheet_png

if TYPE_CHECKING:
    from bot.app import ColorBot
    from models.worker.coloring import MemberColoring

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
# Discord's smallest upload limit (no boosts), used when the guild is unknown.
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024


@dataclass
class PageRequest:
    """A page someone asked us to color, and where it came from (its stored record,
    once `color_page` recorded it, is a `db.Page`)."""

    data: bytes
    filename: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None  # the message carrying the page (None for /colorize, retries)
    author_id: int
    source: str = "discord"  # discord | slash | retry (🎲 Another try)


@dataclass
class ColoredPage:
    page_id: int  # the recorded page (its 🎲 Another try button colors it again)
    content: str
    files: list[ImageFile]
    emojis: list[str]  # one reaction per member, in family order
    colorings: list[MemberColoring]
    parameters: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0


def looks_like_image(attachment: discord.Attachment) -> bool:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    if content_type:
        return content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def check_attachment(attachment: discord.Attachment, max_bytes: int) -> None:
    """Raise a kind UserError for what we can tell before downloading."""
    if not looks_like_image(attachment):
        raise NotAnImage(attachment.filename)
    if attachment.size > max_bytes:
        raise TooLarge(attachment.filename, attachment.size, max_bytes)


async def read_attachment(bot: ColorBot, attachment: discord.Attachment) -> bytes:
    """Check what Discord told us, then download from an allowed host, streamed with the
    size cap (the size Discord reported may be wrong)."""
    max_bytes = bot.settings.max_upload_bytes
    check_attachment(attachment, max_bytes)
    return await bot.attachments.read(attachment, max_bytes)


async def check_rate(bot: ColorBot, user_id: int) -> None:
    """Count one page against `user_id`'s rate limit, or raise SlowDown (nothing
    counted) saying how long to wait."""
    wait = await bot.rate_limiter.hit(user_id)
    if wait > 0:
        raise SlowDown(wait)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def legend(colorings: list[Any]) -> str:
    """Which emoji is which member: the line people read before voting."""
    parts = [f"{c.emoji} **{c.member}**" for c in colorings]
    return "Vote for your favorite with a reaction: " + " · ".join(parts)


async def color_page(
    bot: ColorBot,
    page: PageRequest,
    *,
    members: list[str] | None = None,
    strength: float = 1.0,
    seed: int | None = None,
    filesize_limit: int = DEFAULT_FILESIZE_LIMIT,
    title: str = "",
) -> ColoredPage:
    """Color the page with the worker, record it, and build the reply (not sent yet).

    `seed` None: each member's most likely coloring; an int: another plausible one (the
    same for the same seed), recorded in each coloring's parameters.

    The page is recorded only once the worker has colored it: a file that is not an
    image (the worker's 400) leaves no row and no stored file behind.
    """
    started = time.perf_counter()
    if not bot.family_members:
        # Started before the worker; try once more now (raises a kind WorkerError).
        await bot.refresh_family()
    result = await bot.worker.colorize(page.data, members=members, strength=strength, seed=seed)
    info = result.page or {}
    recorded = await bot.store.record_page(
        page.data, guild_id=page.guild_id, channel_id=page.channel_id, message_id=page.message_id,
        author_id=page.author_id, source=page.source, filename=page.filename[:255],
        kind=info.get("kind") if isinstance(info.get("kind"), str) else None,
        width=_int(info.get("original_width", info.get("width"))),
        height=_int(info.get("original_height", info.get("height"))),
    )
    page_id = recorded.page.id
    colorings = list(result.colorings)
    sheet = await _sheet(bot, page.data, colorings)
    stem = page.filename.rsplit(".", 1)[0][:40] or "page"
    files: list[ImageFile] = []
    if sheet is not None:
        files.append(ImageFile(f"{stem}-family.png", sheet))
    # Contact sheet first, then one file per member while they fit in one message.
    room = MAX_FILES_PER_MESSAGE - len(files)
    files.extend(ImageFile(f"{stem}-{c.member}.png", c.png) for c in colorings[:room])
    files = await bot.loop.run_in_executor(None, fit_images, files, filesize_limit)
    header = title or "Here is how the family colored it!"
    parameters: dict[str, Any] = {"strength": strength}
    if seed is not None:
        parameters["seed"] = seed
    ms = (time.perf_counter() - started) * 1000
    return ColoredPage(
        page_id=page_id,
        content=f"{header}\n{legend(colorings)}",
        files=files,
        emojis=[c.emoji for c in colorings],
        colorings=colorings,
        parameters=parameters,
        ms=ms,
    )


async def _sheet(bot: ColorBot, page_png: bytes, colorings: list[Any]) -> bytes | None:
    if len(colorings) < 2:
        return None  # one member: its coloring alone says it all
    labelled = [(c.member, c.emoji, c.png) for c in colorings]
    return await bot.loop.run_in_executor(None, contact_sheet_png, page_png, labelled)


def discord_files(files: list[ImageFile]) -> list[discord.File]:
    return [discord.File(io.BytesIO(f.data), filename=f.filename) for f in files]


async def finish_reply(
    bot: ColorBot, colored: ColoredPage, channel_id: int, message_id: int
) -> None:
    """Link the sent reply to its colorings (votes are looked up by message id) and add
    one reaction per member, in family order."""
    from db import NewColoring

    await bot.store.record_colorings(
        colored.page_id,
        [
            NewColoring(
                member=c.member, version=c.version, emoji=c.emoji, image=c.png,
                parameters=colored.parameters, duration_ms=c.ms,
                timings={"batch_size": c.batch_size},
            )
            for c in colored.colorings
        ],
        message_id=message_id,
    )
    target = bot.get_partial_messageable(channel_id).get_partial_message(message_id)
    for emoji in colored.emojis:
        try:
            await target.add_reaction(emoji)
        except discord.HTTPException:
            log.warning("could not add reaction %s to %s", emoji, message_id, exc_info=True)

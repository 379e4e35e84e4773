"""Contact sheet: the page and every member's coloring side by side, labeled.

Each label is the member's voting emoji as a picture, then its name: people vote by
reacting with that emoji, so the sheet shows the emoji itself. The pictures of the
default family's emoji ship in `models/emoji/` (rendered from Noto Emoji, Apache-2.0;
see its LICENSE). Another emoji is drawn from a color emoji font when one is
installed, else named in words ("[fox face]"). Labels are sized for Discord's preview,
which shows a five-tile sheet at about a quarter of its width.

Pillow only (no torch), so the bot draws the same sheet as the colorizing core.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from models.registry import FamilyMember

# Each tile's long side, in pixels: big enough to judge, small enough for Discord.
TILE = 384
PAD = 12
BACKGROUND = (246, 244, 240)
INK = (30, 30, 30)
EMOJI_DIR = Path(__file__).resolve().parent / "emoji"
_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",  # color emoji, bitmap at 109 px
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "DejaVuSans.ttf",
)


def label_size(tile: int) -> tuple[int, int, int]:
    """(text px, emoji px, label band height) for tiles of `tile` px: an eighth of the
    tile, so a label keeps ~12 px letters when Discord shrinks a 5-tile sheet to ~550 px."""
    text = max(12, round(tile / 8))
    emoji = round(text * 1.2)
    return text, emoji, emoji + 14


@lru_cache(maxsize=4)
def _text_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in _FONT_PATHS[1:]:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=1)
def _emoji_font() -> ImageFont.FreeTypeFont | None:
    try:
        return ImageFont.truetype(_FONT_PATHS[0], 109)  # CBDT fonts only load at 109
    except OSError:
        return None


def _has_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    try:
        return font.getmask(char).getbbox() is not None
    except Exception:  # noqa: BLE001 - missing glyphs raise differently per backend
        return False


def emoji_file(emoji: str) -> Path:
    """Where the shipped picture of `emoji` lives: its code points, `1f600.png` for 😀."""
    return EMOJI_DIR / ("-".join(f"{ord(ch):x}" for ch in emoji if ch != "\ufe0f") + ".png")


@lru_cache(maxsize=64)
def emoji_picture(emoji: str) -> Image.Image | None:
    """The emoji as an RGBA picture: the shipped PNG, else a color emoji font's glyph,
    else None (then the label names it in words)."""
    if not emoji:
        return None
    path = emoji_file(emoji)
    if path.is_file():
        with Image.open(path) as image:
            return image.convert("RGBA")
    font = _emoji_font()
    if font is not None and _has_glyph(font, emoji):
        glyph = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((0, 0), emoji, font=font, embedded_color=True)
        return glyph.crop(glyph.getbbox() or (0, 0, 1, 1))
    return None


def emoji_label(emoji: str) -> str:
    """A text stand-in for an emoji: its Unicode name(s), lowercase, in brackets."""
    names = [unicodedata.name(ch, "").lower() for ch in emoji if unicodedata.name(ch, "")]
    return f"[{' + '.join(names) or 'emoji'}]"


def _label_parts(member: FamilyMember | str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(member, tuple):
        return member[0], member[1]
    if isinstance(member, str):
        return member, ""
    return member.name, member.emoji  # a FamilyMember, or anything with a name and emoji


def _fit(image: Image.Image, tile: int) -> Image.Image:
    scale = tile / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _draw_label(sheet: Image.Image, x: int, y: int, width: int, height: int, name: str,
                emoji: str, tile: int) -> None:
    """The emoji picture and the name, centred in the band under a tile."""
    draw = ImageDraw.Draw(sheet)
    text_px, emoji_px, _ = label_size(tile)
    font = _text_font(text_px)
    picture = emoji_picture(emoji)
    text = name if picture is not None or not emoji else f"{name} {emoji_label(emoji)}"
    gap = emoji_px // 4 if picture is not None else 0
    room = width - (emoji_px + gap if picture is not None else 0)
    while draw.textlength(text, font=font) > room and len(text) > 4:
        text = text[:-2] + "…"
    total = draw.textlength(text, font=font) + (emoji_px + gap if picture is not None else 0)
    left = x + max(0, round((width - total) / 2))
    if picture is not None:
        icon = picture.resize((emoji_px, emoji_px), Image.Resampling.LANCZOS)
        sheet.paste(icon, (left, y + (height - emoji_px) // 2), icon)
        left += emoji_px + gap
    draw.text((left, y + height // 2), text, font=font, fill=INK, anchor="lm")


def contact_sheet(
    page: Image.Image,
    colorings: Sequence[tuple[FamilyMember | str | tuple[str, str], Image.Image]],
    tile: int = TILE,
) -> Image.Image:
    """One RGB image: the page, then each (member, coloring), in a row, labeled.

    A member is a `FamilyMember`, a name, or a (name, emoji) pair. More than four
    colorings wrap onto further rows.
    """
    label_h = label_size(tile)[2]
    tiles = [("page", "", _fit(page, tile))]
    tiles += [(*_label_parts(member), _fit(image, tile)) for member, image in colorings]
    columns = min(len(tiles), 5)
    rows = -(-len(tiles) // columns)
    cell_w = max(im.width for _, _, im in tiles)
    cell_h = max(im.height for _, _, im in tiles)
    sheet = Image.new(
        "RGB",
        (PAD + columns * (cell_w + PAD), PAD + rows * (cell_h + label_h + PAD)),
        BACKGROUND,
    )
    for i, (name, emoji, im) in enumerate(tiles):
        col, row = i % columns, i // columns
        x = PAD + col * (cell_w + PAD)
        y = PAD + row * (cell_h + label_h + PAD)
        sheet.paste(im, (x + (cell_w - im.width) // 2, y + (cell_h - im.height) // 2))
        _draw_label(sheet, x, y + cell_h, cell_w, label_h, name, emoji, tile)
    return sheet

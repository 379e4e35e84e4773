"""Contact sheet: the page and every member's coloring side by side, labeled.

Emoji: Pillow draws color emoji only from a color font (Noto Color Emoji and the
like) and only at that font's bitmap size; this machine has none (just DejaVu,
which lacks U+1F600 and friends). So the label draws the emoji glyph when a font
that has it is found, and otherwise the emoji's Unicode name in brackets, e.g.
"openmoji [grinning face]" — readable everywhere, and it names the reaction to vote with.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from models.family import FamilyMember

# Each tile's long side, in pixels: big enough to judge, small enough for Discord.
TILE = 384
PAD = 12
LABEL_HEIGHT = 34
BACKGROUND = (246, 244, 240)
INK = (30, 30, 30)
_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",  # color emoji, bitmap at 109 px
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "DejaVuSans.ttf",
)


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


def emoji_label(emoji: str) -> str:
    """A text stand-in for an emoji: its Unicode name(s), lowercase, in brackets."""
    names = [unicodedata.name(ch, "").lower() for ch in emoji if unicodedata.name(ch, "")]
    return f"[{' + '.join(names) or 'emoji'}]"


def _label_parts(member: FamilyMember | str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(member, FamilyMember):
        return member.name, member.emoji
    if isinstance(member, tuple):
        return member[0], member[1]
    return str(member), ""


def _fit(image: Image.Image, tile: int) -> Image.Image:
    scale = tile / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _draw_label(sheet: Image.Image, x: int, y: int, width: int, name: str, emoji: str) -> None:
    draw = ImageDraw.Draw(sheet)
    font = _text_font(18)
    emoji_font = _emoji_font()
    if emoji and emoji_font is not None and _has_glyph(emoji_font, emoji):
        glyph = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((0, 0), emoji, font=emoji_font, embedded_color=True)
        glyph = glyph.crop(glyph.getbbox() or (0, 0, 1, 1)).resize((24, 24))
        sheet.paste(glyph, (x, y + 4), glyph)
        draw.text((x + 30, y + 6), name, font=font, fill=INK)
        return
    text = f"{name} {emoji_label(emoji)}" if emoji else name
    while draw.textlength(text, font=font) > width and len(text) > 4:
        text = text[:-2] + "…"
    draw.text((x, y + 6), text, font=font, fill=INK)


def contact_sheet(
    page: Image.Image,
    colorings: Sequence[tuple[FamilyMember | str | tuple[str, str], Image.Image]],
    tile: int = TILE,
) -> Image.Image:
    """One RGB image: the page, then each (member, coloring), in a row, labeled.

    A member is a `FamilyMember`, a name, or a (name, emoji) pair. More than four
    colorings wrap onto further rows.
    """
    tiles = [("page", "", _fit(page, tile))]
    tiles += [(*_label_parts(member), _fit(image, tile)) for member, image in colorings]
    columns = min(len(tiles), 5)
    rows = -(-len(tiles) // columns)
    cell_w = max(im.width for _, _, im in tiles)
    cell_h = max(im.height for _, _, im in tiles)
    sheet = Image.new(
        "RGB",
        (PAD + columns * (cell_w + PAD), PAD + rows * (cell_h + LABEL_HEIGHT + PAD)),
        BACKGROUND,
    )
    for i, (name, emoji, im) in enumerate(tiles):
        col, row = i % columns, i // columns
        x = PAD + col * (cell_w + PAD)
        y = PAD + row * (cell_h + LABEL_HEIGHT + PAD)
        sheet.paste(im, (x + (cell_w - im.width) // 2, y + (cell_h - im.height) // 2))
        _draw_label(sheet, x, y + cell_h, cell_w, name, emoji)
    return sheet

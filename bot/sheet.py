"""The contact sheet shown first in a reply: the page and every member's coloring.

The colorizing core's `models.sheet.contact_sheet` draws it when the core is already
loaded in this process (the in-process worker); it imports `models.family`, hence
torch, which a bot talking to remote workers must not load. Otherwise (or if it fails)
a plain Pillow grid with a label under each image.
"""

from __future__ import annotations

import io
import logging
import sys

from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

THUMB = 320  # long side of each tile, pixels
LABEL_HEIGHT = 18
PAD = 8


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def contact_sheet_png(page_png: bytes, colorings: list[tuple[str, str, bytes]]) -> bytes:
    """PNG bytes of the page followed by each (member name, emoji, coloring PNG)."""
    page = _open(page_png)
    images = [((name, emoji), _open(data)) for name, emoji, data in colorings]
    sheet = None
    if "torch" in sys.modules:  # the core is loaded anyway: use its nicer sheet
        try:
            from models.sheet import contact_sheet

            sheet = contact_sheet(page, images)
        except Exception:
            log.warning("models.sheet.contact_sheet failed; using the plain grid",
                        exc_info=True)
    if sheet is None:
        sheet = _grid([("page", page), *((f"{e} {n}", im) for (n, e), im in images)])
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()


def _grid(tiles: list[tuple[str, Image.Image]]) -> Image.Image:
    """Tiles in rows of up to five (the page and four members fit one row), each
    labelled right under its picture."""
    thumbs = []
    for _, image in tiles:
        thumb = image.copy()
        thumb.thumbnail((THUMB, THUMB))
        thumbs.append(thumb)
    columns = min(len(tiles), 5)
    rows = -(-len(tiles) // columns)
    cell_w = THUMB + PAD
    cell_h = max(t.height for t in thumbs) + LABEL_HEIGHT + PAD
    sheet = Image.new("RGB", (columns * cell_w + PAD, rows * cell_h + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, ((label, _), thumb) in enumerate(zip(tiles, thumbs, strict=True)):
        x, y = PAD + (i % columns) * cell_w, PAD + (i // columns) * cell_h
        sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y))
        # Emoji do not render in the default bitmap font: label with the ASCII part.
        text = label.encode("ascii", "ignore").decode().strip() or f"#{i}"
        draw.text((x + (THUMB - thumb.width) // 2, y + thumb.height + 4), text, fill="black",
                  font=font)
    return sheet

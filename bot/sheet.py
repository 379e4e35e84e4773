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
LABEL_HEIGHT = 22


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
    columns = min(len(tiles), 3)
    rows = -(-len(tiles) // columns)
    cell_w, cell_h = THUMB, THUMB + LABEL_HEIGHT
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, (label, image) in enumerate(tiles):
        thumb = image.copy()
        thumb.thumbnail((THUMB, THUMB))
        x, y = (i % columns) * cell_w, (i // columns) * cell_h
        sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        # Emoji do not render in the default bitmap font: label with the ASCII part.
        text = label.encode("ascii", "ignore").decode().strip() or f"#{i}"
        draw.text((x + 6, y + THUMB + 4), text, fill="black", font=font)
    return sheet

"""The contact sheet shown first in a reply: the page and every member's coloring.

One sheet for everyone: `models.sheet.contact_sheet` (Pillow only, no torch), the same
picture `colorbot colorize` writes, with each member's voting emoji drawn as a picture.
"""

from __future__ import annotations

import io

from PIL import Image

from models.sheet import contact_sheet


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def contact_sheet_png(page_png: bytes, colorings: list[tuple[str, str, bytes]]) -> bytes:
    """PNG bytes of the page followed by each (member name, emoji, coloring PNG)."""
    page = _open(page_png)
    sheet = contact_sheet(page, [((name, emoji), _open(data)) for name, emoji, data in colorings])
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()

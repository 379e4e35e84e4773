"""The contact sheet shown first in a reply: the page and every member's coloring.

One sheet for everyone: `models.sheet.contact_sheet` (Pillow only, no torch), the same
picture `colorbot colorize` writes, with each member's voting emoji drawn as a picture.
"""

from __future__ import annotations

import io

from PIL import Image

from models.sheet import contact_sheet


def _open(data: bytes, fit: tuple[int, int] | None = None) -> Image.Image:
    """An RGB picture; with `fit`, no bigger than that (JPEGs decode at a reduced scale)."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if fit is not None:
        image.draft("RGB", fit)
    image.load()
    image = image.convert("RGB")
    if fit is not None and image.width * image.height > fit[0] * fit[1]:
        image.thumbnail(fit, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def contact_sheet_png(page_png: bytes, colorings: list[tuple[str, str, bytes]]) -> bytes:
    """PNG bytes of the page followed by each (member name, emoji, coloring PNG).

    The page is opened no bigger than its colorings: a worker colors a big page at its
    pixel budget, and a 40-megapixel scan need not be held at full size for a sheet.
    """
    images = [((name, emoji), _open(data)) for name, emoji, data in colorings]
    fit = max((im.size for _, im in images), key=lambda size: size[0] * size[1], default=None)
    page = _open(page_png, fit)
    sheet = contact_sheet(page, images)
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()

"""A seeded database for the web page: two servers (one with its gallery on), pages
by two people, every member's coloring of each page, and votes.

Tests use drawn toy pictures; `python -m tests.web.seed DATA_DIR --real` colors the
example pages with the bundled family (for screenshots: `colorbot web` with
COLORBOT_DATA=DATA_DIR).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from db import Database, NewColoring
from db.web_queries import set_gallery

MEMBERS = (("openmoji", "😀"), ("fluent", "🌈"), ("clipart", "📎"), ("artworks", "🎨"))
SHOWN_GUILD, HIDDEN_GUILD = 1001, 1002
ALICE, BOB = 501, 502
VOTERS = tuple(range(900, 912))
# Which member each voter of a page picks, page by page: openmoji is liked best,
# artworks least, so the board has an order and intervals to show.
_PICKS = (0, 0, 1, 0, 2, 1, 0, 3, 0, 1, 2, 0)

Colorize = Callable[[bytes], dict[str, bytes]]


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def toy_page(seed: int, size: tuple[int, int] = (240, 200)) -> bytes:
    """Black outlines on white: a circle and a box, placed by `seed`."""
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    x = 20 + (seed * 37) % 80
    d.ellipse((x, 30, x + 90, 120), outline="black", width=4)
    d.rectangle((120 - x // 3, 100, 220 - x // 3, 180), outline="black", width=4)
    return png(img)


def toy_colorize(page: bytes) -> dict[str, bytes]:
    """Each member fills the paper with its own tint (enough to tell them apart)."""
    out = {}
    tints = ((250, 210, 80), (120, 190, 250), (170, 220, 140), (200, 120, 90))
    for (name, _), tint in zip(MEMBERS, tints, strict=True):
        img = Image.open(io.BytesIO(page)).convert("RGB")
        lines = img.convert("L").point(lambda v: 255 if v < 128 else 0)
        colored = Image.new("RGB", img.size, tint)
        colored.paste((20, 20, 20), mask=lines)
        out[name] = png(colored)
    return out


@dataclass
class Seeded:
    pages: dict[int, list[int]] = field(default_factory=dict)  # guild -> page ids
    by_author: dict[int, list[int]] = field(default_factory=dict)  # author -> page ids
    colorings: dict[int, list[int]] = field(default_factory=dict)  # page -> coloring ids


async def seed(db: Database, *, pages_per_guild: int = 4, colorize: Colorize = toy_colorize,
               page_images: list[bytes] | None = None, guild_names: tuple[str, str] = (
                   "Family", "Secret club")) -> Seeded:
    seeded = Seeded()
    await set_gallery(db, SHOWN_GUILD, True, name=guild_names[0])
    await db.ensure_guild(HIDDEN_GUILD, guild_names[1])
    message = 10_000
    for guild in (SHOWN_GUILD, HIDDEN_GUILD):
        for i in range(pages_per_guild):
            author = (ALICE, BOB)[i % 2]
            image = page_images[i % len(page_images)] if page_images else toy_page(
                i + guild)
            message += 2
            recorded = await db.record_page(image, guild_id=guild, channel_id=77,
                                            message_id=message, author_id=author,
                                            filename=f"page{i}.png", kind="lineart")
            page_id = recorded.page.id
            colorings = colorize(image)
            rows = await db.record_colorings(page_id, [
                NewColoring(name, 1, emoji, colorings[name]) for name, emoji in MEMBERS
                if name in colorings], message_id=message + 1)
            seeded.pages.setdefault(guild, []).append(page_id)
            seeded.by_author.setdefault(author, []).append(page_id)
            seeded.colorings[page_id] = [r.id for r in rows]
            for k, voter in enumerate(VOTERS[: 4 + 2 * i]):
                name, emoji = MEMBERS[_PICKS[(k + i) % len(_PICKS)]]
                await db.cast_vote(message + 1, emoji, voter)
    return seeded


def _real_colorize() -> Colorize:
    from models.family import Family
    from models.images import load_page
    from models.pipeline import Colorizer

    colorizer = Colorizer(Family.load())

    def colorize(page: bytes) -> dict[str, bytes]:
        result = colorizer.colorize([load_page(page)])[0]
        return {name: png(img) for name, img in result.items()}

    return colorize


def main() -> None:
    import argparse
    import asyncio
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data", type=Path, help="COLORBOT_DATA folder to create")
    parser.add_argument("--real", action="store_true",
                        help="color examples/*.png with the bundled family (needs torch)")
    args = parser.parse_args()

    async def run() -> None:
        args.data.mkdir(parents=True, exist_ok=True)
        db = Database(f"sqlite+aiosqlite:///{(args.data / 'colorbot.sqlite3').resolve()}",
                      store_dir=args.data / "store")
        await db.upgrade()
        images = None
        colorize = toy_colorize
        if args.real:
            root = Path(__file__).resolve().parents[2] / "examples"
            images = [p.read_bytes() for p in sorted(root.glob("*.png"))]
            images += [toy_page(7, (320, 240))]
            colorize = _real_colorize()
        await seed(db, pages_per_guild=3, colorize=colorize, page_images=images)
        await db.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()

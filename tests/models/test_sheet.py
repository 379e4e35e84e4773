"""Contact sheets: the page and every coloring, side by side, labeled."""

from __future__ import annotations

import numpy as np
from PIL import Image

from models.family import FamilyMember
from models.sheet import contact_sheet, emoji_label


def _member(name: str, emoji: str) -> FamilyMember:
    return FamilyMember(name=name, emoji=emoji, description="", architecture="unet",
                        config={}, weights="")


def test_sheet_holds_every_tile_side_by_side():
    page = Image.new("RGB", (300, 200), "white")
    colorings = [(_member(n, e), Image.new("RGB", (300, 200), c)) for n, e, c in (
        ("openmoji", "😀", (255, 0, 0)), ("fluent", "🌈", (0, 255, 0)),
        ("clipart", "📎", (0, 0, 255)), ("artworks", "🎨", (255, 255, 0)))]
    sheet = contact_sheet(page, colorings, tile=120)
    assert sheet.mode == "RGB"
    assert sheet.width > 5 * 120 and sheet.height < 2 * 120  # one row of five
    arr = np.asarray(sheet)
    row = arr[40]  # across the tiles
    for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)):
        assert (row == color).all(axis=1).sum() > 50
    labels = arr[80 + 12:]  # below the tiles: some dark label text
    assert (labels.sum(axis=2) < 200).sum() > 100


def test_sheet_accepts_names_and_pairs_and_wraps():
    page = Image.new("RGB", (50, 100), "white")
    tiles = [(f"m{i}", Image.new("RGB", (50, 100), "gray")) for i in range(5)]
    tiles.append((("pair", "🐱"), Image.new("RGB", (50, 100), "gray")))
    sheet = contact_sheet(page, tiles, tile=64)
    assert sheet.height > 2 * 64  # seven tiles wrap onto a second row


def test_emoji_label_names_the_emoji():
    assert emoji_label("😀") == "[grinning face]"
    assert emoji_label("🎨") == "[artist palette]"

"""Sheets show each member's voting emoji as a picture, readable at Discord's preview size."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

from models.sheet import EMOJI_DIR, contact_sheet, emoji_file, emoji_picture, label_size

ROOT = Path(__file__).resolve().parents[2]
VOTING_EMOJI = {"openmoji": "😀", "fluent": "🌈", "clipart": "📎", "artworks": "🎨"}
PREVIEW_WIDTH = 550  # about the widest Discord shows an attached image in a chat


def _sheet(tile: int = 384) -> Image.Image:
    page = Image.new("RGB", (400, 300), "white")
    gray = Image.new("RGB", (400, 300), (128, 128, 128))
    return contact_sheet(page, [((n, e), gray) for n, e in VOTING_EMOJI.items()], tile=tile)


def _saturated(pixels: np.ndarray) -> int:
    rgb = pixels.astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 50).sum())


def test_every_default_voting_emoji_ships_as_a_picture_with_its_license():
    for emoji in VOTING_EMOJI.values():
        path = emoji_file(emoji)
        assert path.is_file(), emoji
        with Image.open(path) as image:
            assert image.mode == "RGBA" and min(image.size) >= 48
    license_text = (EMOJI_DIR / "LICENSE").read_text()
    assert "Noto" in license_text and "Apache License" in license_text
    assert "twemoji" not in license_text.lower()


def test_the_emoji_pictures_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["models"]
    assert "emoji/*.png" in patterns and "emoji/LICENSE" in patterns


def test_each_member_label_draws_its_emoji_in_color_and_the_page_label_none():
    tile = 384
    sheet = np.asarray(_sheet(tile))
    band = sheet[-12 - label_size(tile)[2]: -12]  # one row of tiles: the band at the bottom
    cell = tile + 12
    page_label = band[:, 12: 12 + tile]
    assert _saturated(page_label) == 0
    for i in range(1, 5):
        label = band[:, 12 + i * cell: 12 + i * cell + tile]
        assert _saturated(label) > 100, list(VOTING_EMOJI)[i - 1]


def test_labels_stay_readable_when_discord_shrinks_the_sheet():
    sheet = _sheet()
    scale = PREVIEW_WIDTH / sheet.width
    small = np.asarray(sheet.resize((PREVIEW_WIDTH, round(sheet.height * scale)),
                                    Image.Resampling.LANCZOS))
    band_top = round((sheet.height - 12 - label_size(384)[2]) * scale)
    page_label = small[band_top:, : round((12 + 384) * scale)]
    ink_rows = np.nonzero((page_label.sum(axis=2) < 3 * 110).any(axis=1))[0]
    assert len(ink_rows) and ink_rows.max() - ink_rows.min() + 1 >= 9  # "page": ~12 px tall


def test_an_emoji_without_a_picture_or_font_is_named_in_words(monkeypatch):
    import models.sheet

    monkeypatch.setattr(models.sheet, "_emoji_font", lambda: None)
    emoji_picture.cache_clear()
    try:
        assert emoji_picture("🦊") is None
        assert emoji_picture("🌈") is not None  # shipped: needs no font
        drawn = []
        monkeypatch.setattr(models.sheet.ImageDraw.ImageDraw, "text",
                            lambda self, xy, text, **kw: drawn.append(text))
        contact_sheet(Image.new("RGB", (64, 64), "white"),
                      [(("fox", "🦊"), Image.new("RGB", (64, 64), "gray"))], tile=256)
        assert "fox [fox face]" in drawn
    finally:
        emoji_picture.cache_clear()


def test_the_sheet_needs_no_torch():
    code = ("import sys, models.sheet, bot.sheet; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_bot_and_colorize_draw_the_same_sheet():
    import io

    from bot.sheet import contact_sheet_png

    def png(image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()

    page = Image.new("RGB", (200, 150), "white")
    coloring = Image.new("RGB", (200, 150), (200, 60, 60))
    sheet_png = contact_sheet_png(png(page), [("fluent", "🌈", png(coloring))])
    from_bot = Image.open(io.BytesIO(sheet_png))
    direct = contact_sheet(page, [(("fluent", "🌈"), coloring)])
    assert np.array_equal(np.asarray(from_bot.convert("RGB")), np.asarray(direct))

"""Page kind: coloring pages vs grayscale photos, and the override."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.images import load_page, page_lightness
from models.pagekind import detect_page_kind
from models.pipeline import ColorizeOptions

from .conftest import draw_lineart, draw_photo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _kind(image: Image.Image) -> str:
    return detect_page_kind(page_lightness(image)).kind


@pytest.mark.parametrize("size", [(240, 160), (1200, 900), (90, 300)])
def test_line_art_is_detected(size):
    assert _kind(draw_lineart(size, width=max(1, size[0] // 100))) == "lineart"


@pytest.mark.parametrize("seed", [0, 1])
def test_photo_is_detected(seed):
    assert _kind(draw_photo((320, 240), seed=seed)) == "photo"


def test_gray_paper_scan_is_still_line_art():
    arr = np.asarray(draw_lineart((300, 200))).astype(np.float64)
    scan = arr * (200 / 255) + np.random.default_rng(0).normal(0, 2, arr.shape)
    assert _kind(Image.fromarray(np.clip(scan, 0, 255).astype(np.uint8))) == "lineart"


def test_dark_picture_is_a_photo():
    assert _kind(Image.new("RGB", (100, 100), (40, 40, 40))) == "photo"


def test_soft_gradient_on_white_is_a_photo():
    # Mostly bright but full of smooth mid-tones: shading, not lines.
    grad = np.tile(np.linspace(90, 255, 200), (150, 1)).astype(np.uint8)
    assert _kind(Image.fromarray(grad).convert("RGB")) == "photo"


@pytest.mark.parametrize("name,kind", [
    ("house.png", "lineart"), ("flower.png", "lineart"), ("spheres.jpg", "photo"),
])
def test_examples_are_what_they_claim(name, kind):
    assert _kind(load_page(EXAMPLES / name)) == kind


def test_override_wins(colorizer, lineart, photo):
    assert colorizer.prepare(lineart).kind == "lineart"
    page = colorizer.prepare(lineart, ColorizeOptions(kind="photo"))
    assert page.kind == "photo" and page.detected.kind == "lineart" and not page.fill
    assert colorizer.prepare(photo, ColorizeOptions(kind="lineart")).kind == "lineart"


def test_bad_kind_is_rejected():
    with pytest.raises(ValueError):
        ColorizeOptions(kind="sketch")

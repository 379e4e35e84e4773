"""Fixtures for the colorizing core: the bundled family, loaded once, and small pages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.family import Family
from models.pipeline import Colorizer

# The bundled networks, run at a smaller working size than their manifest says: the
# tests check the pipeline's behaviour, and this keeps the suite quick on 2 busy cores.
TEST_WORK_SIZE = 96


@pytest.fixture(scope="session")
def family() -> Family:
    family = Family.load()
    for member in family.members:
        member.work_size = TEST_WORK_SIZE
    return family


@pytest.fixture(scope="session")
def colorizer(family: Family) -> Colorizer:
    return Colorizer(family, device="cpu")


def draw_lineart(size: tuple[int, int] = (240, 160), width: int = 3) -> Image.Image:
    """A white page with black outlines: a box split in two, a circle, a triangle."""
    w, h = size
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    d.rectangle((w * 0.05, h * 0.1, w * 0.45, h * 0.9), outline="black", width=width)
    d.line([(w * 0.05, h * 0.5), (w * 0.45, h * 0.5)], fill="black", width=width)
    d.ellipse((w * 0.55, h * 0.1, w * 0.9, h * 0.6), outline="black", width=width)
    d.polygon([(w * 0.6, h * 0.9), (w * 0.75, h * 0.65), (w * 0.95, h * 0.9)],
              outline="black", width=width)
    return im


def draw_photo(size: tuple[int, int] = (240, 160), seed: int = 0) -> Image.Image:
    """A grayscale photo-like picture: smooth shading, a lit ball, sensor noise."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 50 + 150 * yy / h + 30 * np.sin(xx / w * 6)
    r = min(w, h) * 0.3
    d2 = ((xx - w * 0.4) ** 2 + (yy - h * 0.45) ** 2) / r**2
    img = np.where(d2 < 1, 60 + 170 * np.sqrt(np.clip(1 - d2, 0, 1)), img)
    img += np.random.default_rng(seed).normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").convert("RGB")


@pytest.fixture
def lineart() -> Image.Image:
    return draw_lineart()


@pytest.fixture
def photo() -> Image.Image:
    return draw_photo()

"""Fitting a reply's images under Discord's limits (10 files, the guild's upload size)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.files import ENVELOPE_BYTES, MAX_FILES_PER_MESSAGE, ImageFile, fit_images


def noisy_png(name: str, size: int, seed: int) -> ImageFile:
    """A PNG that compresses badly (noise), so sizes are realistic for colorings."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return ImageFile(name, out.getvalue())


def test_small_files_are_kept_as_they_are():
    files = [noisy_png(f"m{i}.png", 32, i) for i in range(3)]
    assert fit_images(files, 10 * 1024 * 1024) == files


def test_at_most_ten_files():
    files = [noisy_png(f"m{i}.png", 8, i) for i in range(14)]
    fitted = fit_images(files, 10 * 1024 * 1024)
    assert len(fitted) == MAX_FILES_PER_MESSAGE
    assert [f.filename for f in fitted] == [f"m{i}.png" for i in range(10)]


@pytest.mark.parametrize("limit", [400_000, 1_000_000])
def test_too_big_is_reencoded_and_downscaled_under_the_limit(limit):
    files = [noisy_png(f"m{i}.png", 400, i) for i in range(5)]  # ~480 kB each
    assert sum(f.size for f in files) > limit
    fitted = fit_images(files, limit)
    assert sum(f.size for f in fitted) <= limit - ENVELOPE_BYTES
    assert [f.filename.rsplit(".", 1)[0] for f in fitted] == [f"m{i}" for i in range(5)]
    for file in fitted:
        with Image.open(io.BytesIO(file.data)) as image:
            image.verify()  # still a valid picture


def test_impossible_limit_raises():
    files = [noisy_png("m.png", 400, 0)]
    with pytest.raises(ValueError):
        fit_images(files, 1_000)

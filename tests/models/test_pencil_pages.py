"""Light pencil pages: their gray lines split regions, and stay visible under any fill."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from models.images import page_lightness
from models.pipeline import PENCIL_LINE, ColorizeOptions, Colorizer
from models.regions import INK_LEVEL, find_regions, ink_threshold, line_level

from .conftest import draw_lineart
from .test_pipeline import _lab


def pencil_page(size: int = 240, gray: int = 140, width: int = 1, scale: int = 3) -> Image.Image:
    """Gray-`gray` outlines drawn at `scale` x and scaled down, as a scanner or a browser
    would: thin pencil lines whose anti-aliased cores are lighter than the pencil."""
    big = size * scale
    big_f = big - 2  # off the small grid: every line straddles two small pixels
    im = Image.new("RGB", (big, big), "white")
    d = ImageDraw.Draw(im)
    color = (gray,) * 3
    w = width * scale
    d.rectangle((big_f * 0.05 + 1, big_f * 0.05 + 1, big_f * 0.95, big_f * 0.95),
                outline=color, width=w)
    d.line([(big_f * 0.05, big_f * 0.5), (big_f * 0.95, big_f * 0.5)], fill=color, width=w)
    d.ellipse((big_f * 0.15, big_f * 0.12, big_f * 0.45, big_f * 0.42), outline=color, width=w)
    d.rectangle((big_f * 0.55, big_f * 0.6, big_f * 0.85, big_f * 0.85), outline=color, width=w)
    return im.resize((size, size), Image.Resampling.LANCZOS)


def test_gray_140_pencil_lines_split_the_page_into_regions():
    page_l = page_lightness(pencil_page())
    # By the fixed rule only a few crossings are ink: the page is one region.
    assert find_regions(page_l, threshold=INK_LEVEL * 100).count == 1
    assert find_regions(page_l).count >= 5  # outside, 2 halves, the ellipse, the box


@pytest.mark.parametrize("make", [
    lambda: draw_lineart((300, 200), width=3),
    lambda: draw_lineart((300, 200), width=1).resize((200, 133), Image.Resampling.LANCZOS),
    lambda: Image.open("examples/house.png").convert("RGB"),
    lambda: Image.open("examples/flower.png").convert("RGB"),
])
@pytest.mark.parametrize("jpeg", [None, 40])
def test_pages_with_dark_lines_keep_the_fixed_threshold(make, jpeg):
    page = make()
    if jpeg:  # JPEG noise and ringing around the lines
        buf = io.BytesIO()
        page.save(buf, "JPEG", quality=jpeg)
        page = Image.open(buf).convert("RGB")
    page_l = page_lightness(page)
    assert ink_threshold(page_l) == INK_LEVEL * 100
    assert np.array_equal(find_regions(page_l).labels,
                          find_regions(page_l, threshold=INK_LEVEL * 100).labels)


def test_gray_shading_on_a_page_with_black_lines_is_not_ink():
    page = draw_lineart((300, 200), width=2)
    d = ImageDraw.Draw(page)
    d.rectangle((170, 130, 290, 195), fill=(175, 175, 175))  # shading, L ~71, 13 % of page
    d.ellipse((20, 20, 60, 60), fill=(200, 200, 200))
    page_l = page_lightness(page)
    assert ink_threshold(page_l) == INK_LEVEL * 100
    regions = find_regions(page_l)
    assert not regions.line[150:190, 180:280].any()  # the shaded area is paper


def test_paper_noise_is_not_a_line_level():
    rng = np.random.default_rng(0)  # scanner / JPEG noise on blank paper: ~3 L
    page_l = np.clip(100 - np.abs(rng.normal(0, 3, (200, 300))), 0, 100).astype(np.float32)
    assert line_level(page_l) is None
    assert ink_threshold(page_l) == INK_LEVEL * 100
    assert find_regions(page_l).count == 1


def _fill_beside(out_l: torch.Tensor, prepared) -> torch.Tensor:
    """Per pixel, the median L of the coloring over its region's paper pixels."""
    labels = torch.from_numpy(prepared.regions.labels).long()
    fills = torch.full((prepared.regions.count + 1,), 100.0)
    for k in range(1, prepared.regions.count + 1):
        fills[k] = out_l[labels == k].median()
    return fills[prepared.assigned]


def black_member(prepared, work: int = 96) -> torch.Tensor:
    h, w = prepared.work_shape(work)
    lab = torch.zeros(3, h, w)
    lab[0] = -0.9  # L 5: a member that would paint the page black
    lab[1] = 0.3
    return lab


@pytest.mark.parametrize("gray,width", [(140, 1), (140, 2), (170, 1)])
def test_pencil_lines_stay_visible_and_fills_keep_color(colorizer, gray, width):
    page = pencil_page(gray=gray, width=width)
    page_l = _lab(page)[0]
    level = line_level(page_lightness(page))
    prepared = colorizer.prepare(page, ColorizeOptions(kind="lineart"))
    assert prepared.regions is not None and prepared.regions.count >= 5
    # The light lines were darkened (not the fills lightened to near white).
    assert prepared.ink <= PENCIL_LINE + 10
    out = _lab(Colorizer.composite(prepared, black_member(prepared)))
    line = page_l <= level + 5  # the drawn lines' cores
    assert int(line.sum()) > 100
    around = _fill_beside(out[0], prepared)
    darker = out[0][line] <= around[line] - 15
    assert float(darker.float().mean()) >= 0.9
    assert float(out[0][line].max()) <= float(page_l[line].max()) + 1  # never lighter
    paper = torch.from_numpy(prepared.regions.labels > 0)
    assert float(out[0][paper].median()) <= PENCIL_LINE + 35  # the fill kept its color


def test_the_bundled_family_colors_a_pencil_page_with_visible_lines(colorizer):
    page = pencil_page()
    page_l = _lab(page)[0]
    line = page_l <= line_level(page_lightness(page)) + 5  # the drawn lines' cores
    prepared = colorizer.prepare(page)
    assert prepared.kind == "lineart" and prepared.regions.count >= 5
    for name in colorizer.family.names:
        out = _lab(colorizer.run_member(name, [prepared])[0])
        around = _fill_beside(out[0], prepared)
        assert float((out[0][line] <= around[line] - 15).float().mean()) >= 0.9, name

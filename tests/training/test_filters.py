"""The coloring-book filter and photo mode."""

import numpy as np
from PIL import Image, ImageDraw

from training.filters import coloring_book, line_mask, make_page, photo_page


def _picture() -> Image.Image:
    """Flat-colored shapes on white, like clip art without outlines."""
    im = Image.new("RGB", (128, 128), "white")
    d = ImageDraw.Draw(im)
    d.ellipse((10, 10, 70, 70), fill=(220, 40, 40))
    d.rectangle((60, 60, 118, 118), fill=(40, 90, 220))
    d.polygon([(20, 120), (50, 80), (80, 120)], fill=(250, 200, 30))
    return im


def test_page_is_mode_l_of_same_size():
    page = coloring_book(_picture())
    assert page.mode == "L"
    assert page.size == (128, 128)


def test_lines_are_dark_and_paper_white():
    page = np.asarray(coloring_book(_picture()))
    mask = line_mask(_picture())
    assert page[mask].max() <= 60  # every line pixel is dark
    assert np.median(page[~mask]) == 255  # paper stays white
    assert 0.02 < mask.mean() < 0.3  # lines exist, but a page is mostly paper
    # The inside of a flat region is paper, its boundary a line.
    assert page[40, 40] == 255
    assert mask[40, 9:13].any()  # the circle's left edge at x=10


def test_line_weight_changes_coverage():
    thin = line_mask(_picture(), line_weight=1).mean()
    thick = line_mask(_picture(), line_weight=5).mean()
    assert thick > 2 * thin


def test_detail_drops_faint_edges():
    im = Image.new("RGB", (128, 128), (200, 200, 200))
    ImageDraw.Draw(im).rectangle((30, 30, 90, 90), fill=(206, 200, 196))  # faint change
    ImageDraw.Draw(im).rectangle((50, 50, 70, 70), fill=(20, 120, 20))  # strong change
    low = line_mask(im, detail=0.0)
    high = line_mask(im, detail=1.0)
    assert not low[29:32, 40:80].any()  # faint edge gone at low detail
    assert high[28:33, 40:80].any()  # and drawn at high detail
    assert low[48:53, 55:65].any()  # strong edge drawn in both


def test_blank_picture_gives_blank_page():
    page = np.asarray(coloring_book(Image.new("RGB", (64, 64), (30, 160, 60))))
    assert (page == 255).all()


def test_photo_mode_keeps_lightness():
    im = Image.new("RGB", (4, 1))
    im.putdata([(0, 0, 0), (255, 255, 255), (255, 0, 0), (119, 119, 119)])
    page = photo_page(im)
    assert page.mode == "L"
    values = [int(v) for v in np.asarray(page)[0]]
    assert values[0] == 0 and values[1] == 255
    assert abs(values[2] - round(53.24 * 2.55)) <= 1  # L* of sRGB red is 53.2
    assert abs(values[3] - round(50.0 * 2.55)) <= 2  # gray 119 is L* ~50
    assert make_page(im, "photo").tobytes() == page.tobytes()

"""Inside the lines: regions, gap closing, per-region medians."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from models.images import page_lightness
from models.regions import find_regions, region_medians, region_samples


def _page(draw) -> np.ndarray:
    im = Image.new("RGB", (200, 100), "white")
    draw(ImageDraw.Draw(im))
    return page_lightness(im)


def test_a_line_splits_the_page_in_two():
    r = find_regions(_page(lambda d: d.line([(100, 0), (100, 99)], fill="black", width=3)))
    assert r.count == 2
    assert r.labels[50, 20] != r.labels[50, 180]
    assert r.labels[50, 100] == 0  # the line itself
    # Every line pixel was handed to a neighbouring region.
    assert (r.assigned > 0).all()
    assert r.assigned[50, 99] == r.labels[50, 20]
    assert r.assigned[50, 101] == r.labels[50, 180]


def test_small_gaps_are_closed_big_ones_are_not():
    def box_with_gap(gap):
        def draw(d):
            d.rectangle((50, 20, 150, 80), outline="black", width=2)
            d.rectangle((99 - gap // 2, 20, 100 + gap - gap // 2 - 1, 22), fill="white")
        return draw

    closed = find_regions(_page(box_with_gap(2)), gap=2)
    assert closed.labels[50, 100] != closed.labels[5, 5]  # inside != outside
    open_ = find_regions(_page(box_with_gap(12)), gap=2)
    assert open_.labels[50, 100] == open_.labels[5, 5]  # the paint leaks out


def test_blank_page_is_one_region():
    r = find_regions(np.full((50, 60), 100.0, dtype=np.float32))
    assert r.count == 1 and (r.assigned == 1).all()


def test_region_medians_match_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 30, size=(60, 40)).astype(np.int32)
    from models.regions import Regions

    regions = Regions(labels, labels, 29)
    samples = region_samples(regions, (60, 40))
    pred = torch.randn(3, 60, 40)
    colors, has = region_medians(pred, samples)
    assert not has[0] and has[1:].all()
    for k in (1, 13, 29):
        values = pred[:, torch.from_numpy(labels == k)]
        lower_median = values.sort(dim=1).values[:, (values.shape[1] - 1) // 2]
        assert torch.allclose(colors[k], lower_median, atol=1e-6)


def test_regions_too_small_for_the_work_grid_have_no_median():
    page = _page(lambda d: d.rectangle((10, 10, 14, 14), outline="black", width=1))
    r = find_regions(page, gap=0)
    samples = region_samples(r, (10, 20))  # 10x coarser than the page
    tiny = r.labels[12, 12]
    assert tiny > 0 and int(samples.counts[tiny]) == 0


def test_find_regions_is_fast_at_1024():
    import time

    im = Image.new("RGB", (1024, 1024), "white")
    d = ImageDraw.Draw(im)
    rng = np.random.default_rng(0)
    for _ in range(60):
        x, y = rng.integers(0, 900, 2)
        d.ellipse((x, y, x + rng.integers(20, 200), y + rng.integers(20, 200)),
                  outline="black", width=3)
    lightness = page_lightness(im)
    find_regions(lightness)
    start = time.process_time()  # CPU time: robust to a busy shared machine
    r = find_regions(lightness)
    assert r.count > 60
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize("size", [3, 5, 7, 9, 21])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 64), (130, 200)])
def test_square_closing_matches_scipys_filters(size, shape):
    from scipy import ndimage

    from models.regions import close_square

    mask = np.random.default_rng(size).random(shape) < 0.2
    ref = ndimage.minimum_filter(ndimage.maximum_filter(mask.view(np.uint8), size=size),
                                 size=size)
    assert np.array_equal(close_square(mask, size), ref.astype(bool))


def test_region_adjacency_pairs_regions_across_lines():
    from models.regions import region_adjacency

    def brute(assigned, count):
        out = [set() for _ in range(count + 1)]
        h, w = assigned.shape
        for y in range(h):
            for x in range(w):
                for yy, xx in ((y + 1, x), (y, x + 1)):
                    if yy < h and xx < w:
                        a, b = int(assigned[y, x]), int(assigned[yy, xx])
                        if a != b and a and b:
                            out[a].add(b)
                            out[b].add(a)
        return out

    page = _page(lambda d: (d.line([(100, 0), (100, 99)], fill="black", width=3),
                            d.line([(0, 50), (199, 50)], fill="black", width=3),
                            d.ellipse((20, 10, 60, 40), outline="black", width=2)))
    r = find_regions(page)
    assert r.count == 5
    assert region_adjacency(r.assigned, r.count) == brute(r.assigned, r.count)
    noisy = np.random.default_rng(1).integers(1, 40, size=(30, 20)).astype(np.int32)
    assert region_adjacency(noisy, 39) == brute(noisy, 39)


def test_line_pixels_go_to_their_nearest_region():
    """Exact nearest region within sqrt(5) px of paper; deeper ink (thick strokes, a
    filled blob) within 2 px of exact."""
    from scipy import ndimage

    def draw(d):
        for i, width in enumerate((1, 2, 3, 4, 6, 9)):
            d.line([(15 + 30 * i, 0), (15 + 30 * i, 99)], fill="black", width=width)
        d.line([(0, 50), (199, 50)], fill=(90, 90, 90), width=3)
        d.ellipse((120, 10, 160, 40), fill="black")

    r = find_regions(_page(draw), gap=0)
    ink = r.labels == 0
    exact = ndimage.distance_transform_edt(ink)
    to_own = np.full(ink.shape, np.inf)
    for k in range(1, r.count + 1):
        mine = r.assigned == k
        to_own[mine] = ndimage.distance_transform_edt(r.labels != k)[mine]
    assert (r.assigned > 0).all()
    near = ink & (exact**2 <= 5)
    deep = ink & ~near
    assert deep.sum() > 100  # the blob and the thick lines
    assert np.array_equal(to_own[near], exact[near])
    assert (to_own[deep] <= exact[deep] + 2.0).all()

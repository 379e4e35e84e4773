""""Inside the lines": split a line-art page into the regions its lines enclose.

A child with crayons gives each enclosed area one color and never crosses a line. We
do the same with the network's prediction:

1. binarize the lines (ink = darker than ~65% of the paper, or for light pencil lines
   darker than halfway between the lines and the paper: `ink_threshold`);
2. close small gaps in them, so a sketchy outline with a 3-pixel hole still encloses
   its area — a closing with a square of side 2r+1 is the cheap cousin of the
   "trapped ball" fill (a ball of radius r cannot squeeze through the gap);
3. label the connected paper areas (scipy.ndimage.label, 4-connected);
4. hand every line pixel to its nearest region (`nearest_region`: exact within ~2 px
   of paper, half resolution deeper inside thick ink), so anti-aliased line edges take
   the neighbouring region's color while `L_out = min(L_page, L_fill)` keeps the line
   itself as dark as it was.

Each region's color is the per-channel median of the prediction over the region's
pixels, taken at the network's working resolution (`region_medians`). Regions too small
to own a single working-resolution pixel keep the per-pixel prediction.

Everything here is computed once per page and shared by all members.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

# Ink is darker than this share of the paper's lightness (pages with dark lines)...
INK_LEVEL = 0.65
# ...or, when the page's own line level is lighter than _DARK_LINES (pencil), than
# _PENCIL_SHARE of the way from that level to the paper: a fixed share would leave gray
# lines out and the page one region. The two agree at _DARK_LINES (no jump).
# Marks this close to the paper (JPEG noise, paper grain) never count as lines.
_PAPER_NOISE = 10.0
# The line level is this percentile of the marked pixels (darker than paper - noise):
# the darkest line cores, robust to a few specks, and still the black lines on a page
# with black lines and gray shading up to ~50x their area.
_LINE_PERCENTILE = 2.0
_DARK_LINES = 40.0
_PENCIL_SHARE = (INK_LEVEL * 100.0 - _DARK_LINES) / (100.0 - _DARK_LINES)
# Gap radius: gaps up to about 2r pixels are closed. Scales with the page.
_GAP_PER_PIXEL = 1.0 / 400.0


@dataclass(frozen=True)
class Regions:
    labels: np.ndarray  # (H, W) int32: region id per paper pixel, 0 on lines (and closed gaps)
    assigned: np.ndarray  # (H, W) int32: every pixel's region, lines given their nearest one
    count: int  # number of regions; ids are 1..count

    @property
    def line(self) -> np.ndarray:
        """(H, W) bool: line pixels (and the small gaps closed between them)."""
        line: np.ndarray = self.labels == 0
        return line


def gap_radius(shape: tuple[int, int]) -> int:
    # A tiny page (an icon) has no room for gaps: closing would fill its few regions.
    if max(shape) < 64:
        return 0
    return max(1, round(max(shape) * _GAP_PER_PIXEL))


def line_level(lightness: np.ndarray, paper: float = 100.0) -> float | None:
    """The L* of a page's darkest line cores (strided), or None for a page without marks."""
    step = max(1, int(np.ceil(max(lightness.shape) / 1024)))
    small = lightness[::step, ::step]
    marked = small[small < paper - _PAPER_NOISE]
    if marked.size < max(16, small.size // 500):
        return None
    return float(np.percentile(marked, _LINE_PERCENTILE))


def ink_threshold(
    lightness: np.ndarray, paper: float = 100.0, level: float | None = None
) -> float:
    """What is ink on this page: darker than INK_LEVEL x paper, or for light (pencil)
    lines (`level`, default `line_level`) darker than _PENCIL_SHARE (~0.42) of the way
    from the line level to the paper.

    Pages whose lines are darker than _DARK_LINES (L 40, with paper 100) keep the fixed
    threshold exactly, so their regions do not change; the threshold rises smoothly
    above that and stays `_PAPER_NOISE` below the paper.
    """
    fixed = INK_LEVEL * paper
    level = line_level(lightness, paper) if level is None else level
    if level is None:
        return fixed
    pencil = level + _PENCIL_SHARE * (paper - level)
    return max(fixed, min(paper - _PAPER_NOISE, pencil))


def find_regions(
    lightness: np.ndarray, paper: float = 100.0, gap: int | None = None,
    threshold: float | None = None,
) -> Regions:
    """Regions of a line-art page from its CIE L* (H, W); `gap` = closing radius in px,
    `threshold` = the L below which a pixel is ink (default: `ink_threshold`)."""
    gap = gap_radius(lightness.shape) if gap is None else gap
    threshold = ink_threshold(lightness, paper) if threshold is None else threshold
    ink = lightness < threshold
    if gap > 0:
        ink = close_square(ink, 2 * gap + 1) | ink
    labels, count = ndimage.label(~ink)  # 4-connected: a diagonal gap still separates
    labels = labels.astype(np.int32, copy=False)
    if count == 0 or not ink.any():
        return Regions(labels, labels, int(count))
    return Regions(labels, nearest_region(labels, ink), int(count))


# Offsets (dy, dx) within _RING of a pixel, nearest first: a line pixel this close to
# paper (most of every line) takes the region of the nearest paper pixel among them.
_RING = 5  # squared distance: the 8 neighbours, then 2 steps straight, then (1, 2)s
_OFFSETS = sorted(
    ((dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if 0 < dy * dy + dx * dx <= _RING),
    key=lambda o: (o[0] * o[0] + o[1] * o[1], o),
)


def nearest_region(labels: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Every pixel's region: paper its own label, ink (`labels` 0) its nearest region's.

    Ink within sqrt(5) px of paper (every pixel of lines up to 4 px wide) looks for the
    nearest paper pixel among its close offsets: exact distances, ties broken by offset
    order. Deeper ink (thick strokes, filled black areas) takes the region of the nearest
    paper 2x2 block (a distance transform at half resolution): only pixels that are
    drawn as ink anyway, so the region's a/b there matters little. ~2x faster than a
    full-resolution Euclidean distance transform.
    """
    h, w = labels.shape
    assigned = labels.copy()
    flat_ink = np.flatnonzero(ink)
    if flat_ink.size == 0:
        return assigned
    pad = 2
    padded = np.pad(labels, pad).reshape(-1)  # 0 outside the page: never paper
    wp = w + 2 * pad
    ys, xs = np.divmod(flat_ink, w)
    at = (ys + pad) * wp + (xs + pad)
    found = np.zeros(flat_ink.size, dtype=np.int32)
    todo = np.arange(flat_ink.size)
    for dy, dx in _OFFSETS:
        value = padded[at + (dy * wp + dx)]
        hit = value > 0
        if hit.any():
            found[todo[hit]] = value[hit]
            todo, at = todo[~hit], at[~hit]
            if todo.size == 0:
                break
    if todo.size:
        hh, ww = (h + 1) // 2, (w + 1) // 2
        even = np.zeros((hh * 2, ww * 2), dtype=np.int32)
        even[:h, :w] = labels
        # 2x2 block maxima as four strided slices (numpy's max over axes (1, 3) of the
        # reshaped page is ~6x slower)
        blocks = np.maximum(np.maximum(even[0::2, 0::2], even[0::2, 1::2]),
                            np.maximum(even[1::2, 0::2], even[1::2, 1::2]))
        if blocks.any():
            near = ndimage.distance_transform_edt(
                blocks == 0, return_distances=False, return_indices=True
            )
            by, bx = ys[todo] // 2, xs[todo] // 2
            found[todo] = blocks[near[0][by, bx], near[1][by, bx]]
    assigned.reshape(-1)[flat_ink] = found
    return assigned


def _sliding(a: np.ndarray, size: int, axis: int,
             op: Callable[[np.ndarray, np.ndarray], np.ndarray], pad: bool) -> np.ndarray:
    """`op` (| or &) over a centered window of `size` along `axis`; outside pixels = `pad`.

    Spans double (1, 2, 4, ...) so any window is two overlapping spans: O(log size)
    whole-array operations instead of `size`.
    """
    r = size // 2
    n = a.shape[axis]
    widths = [(0, 0)] * a.ndim
    widths[axis] = (r, r)
    m = np.pad(a, widths, constant_values=pad)

    def part(x: np.ndarray, start: int, stop: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    span = 1
    while span * 2 <= size:
        length = m.shape[axis]
        m = op(part(m, 0, length - span), part(m, span, length))  # m[j]: p[j .. j+2span)
        span *= 2
    return op(part(m, 0, n), part(m, size - span, size - span + n))


def close_square(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary closing of a bool (H, W) mask with a size x size square, pixels outside
    the page ignored: the same as scipy's minimum_filter(maximum_filter(mask)) (its
    'reflect' border only repeats pixels a window already holds), ~8x faster."""
    grown = _sliding(_sliding(mask, size, 0, np.logical_or, False), size, 1,
                     np.logical_or, False)
    return _sliding(_sliding(grown, size, 0, np.logical_and, True), size, 1,
                    np.logical_and, True)


def region_adjacency(assigned: np.ndarray, count: int) -> list[set[int]]:
    """Which regions touch (across a line): `neighbours[i]` for ids 0..count.

    `assigned` gives every pixel its region (line pixels their nearest one), so two
    regions separated by a line meet in the middle of that line. Pairs of 4-neighbour
    pixels of different regions, encoded as one integer each and deduplicated.
    """
    neighbours: list[set[int]] = [set() for _ in range(count + 1)]
    n = count + 1
    keys = []
    for a, b in ((assigned[:, :-1], assigned[:, 1:]), (assigned[:-1, :], assigned[1:, :])):
        differ = a != b
        if differ.any():
            x, y = a[differ].astype(np.int64), b[differ].astype(np.int64)
            keys.append(np.minimum(x, y) * n + np.maximum(x, y))
    if not keys:
        return neighbours
    flat = np.concatenate(keys)
    if n * n <= 1 << 22:  # a bitmap of every pair is cheaper than sorting
        seen = np.zeros(n * n, dtype=bool)
        seen[flat] = True
        edges = np.flatnonzero(seen)
    else:
        edges = np.unique(flat)
    for i, j in zip((edges // n).tolist(), (edges % n).tolist(), strict=True):
        if i and j:
            neighbours[i].add(j)
            neighbours[j].add(i)
    return neighbours


@dataclass(frozen=True)
class RegionSamples:
    """Where, on a (h, w) working-resolution grid, each region can be sampled."""

    index: torch.Tensor  # (N,) flat indices into the h*w grid, ordered by region id
    starts: torch.Tensor  # (count + 1,) first position in `index` of each id (0 unused)
    counts: torch.Tensor  # (count + 1,) samples per id; 0 = too small to sample
    size: tuple[int, int]  # (h, w)


def region_samples(regions: Regions, size: tuple[int, int]) -> RegionSamples:
    """Map every working-resolution pixel center to the full-resolution region under it."""
    h, w = size
    height, width = regions.labels.shape
    ys = np.minimum(((np.arange(h) + 0.5) * height / h).astype(np.int64), height - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * width / w).astype(np.int64), width - 1)
    grid = regions.labels[ys[:, None], xs[None, :]].reshape(-1)  # (h*w,) ids, 0 on lines
    flat = np.nonzero(grid)[0]
    ids = grid[flat]
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids, minlength=regions.count + 1)
    counts[0] = 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return RegionSamples(
        index=torch.from_numpy(flat[order]),
        starts=torch.from_numpy(starts),
        counts=torch.from_numpy(counts),
        size=(h, w),
    )


def region_medians(
    prediction: torch.Tensor, samples: RegionSamples
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region, per-channel median of `prediction` (C, h, w).

    Returns (colors (count + 1, C), has_color (count + 1,) bool). Row 0 and regions
    without a sample have no color.
    """
    channels = prediction.shape[0]
    n_ids = samples.counts.numel()
    colors = torch.zeros(n_ids, channels, dtype=prediction.dtype)
    has = samples.counts > 0
    if samples.index.numel() == 0:
        return colors, has
    values = prediction.reshape(channels, -1)[:, samples.index].double().numpy()  # (C, N)
    ids = np.repeat(np.arange(n_ids), samples.counts.numpy())  # (N,), ascending
    # One sort per channel sorts by id, then by value inside each id: the key is the
    # id plus the value squeezed into [0, 1) (float64 keeps ~1e-10 resolution).
    lo = values.min(axis=1, keepdims=True)
    span = values.max(axis=1, keepdims=True) - lo
    frac = (values - lo) / np.where(span > 0, span * 1.000001, 1.0)
    keys = np.sort(ids[None, :] + frac, axis=1)
    sorted_values = (keys - ids[None, :]) * np.where(span > 0, span * 1.000001, 1.0) + lo
    mid = (samples.starts + (samples.counts - 1).clamp_min(0) // 2)[has].numpy()  # lower median
    colors[has] = torch.from_numpy(sorted_values[:, mid].T).to(colors.dtype)
    return colors, has

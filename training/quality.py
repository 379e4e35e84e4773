"""What a person sees in a coloring, as numbers: the figures of `benchmarks/quality.py`.

All of them are measured on a coloring of a line-art page, with the page's own regions
(`models.regions.find_regions`, the regions the fill uses):

- **distinct region colors**: each region's color is its median LAB in the coloring;
  colors closer than CIEDE2000 10 are one color; a color counts when its regions
  cover at least 2 % of the page. White paper counts as one color like any other;
- **background lightness**: mean L* of the regions that touch the page's border (the
  paper around the drawing);
- **line visibility**: of the page's line pixels (ink, by the fill's own threshold), the share
  whose coloring is at least 15 L* darker than the fill of the region around them.

CIEDE2000 and colorfulness are `training.evaluate`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from models.regions import Regions, find_regions, ink_threshold

SAME_COLOR_DE = 10.0  # region colors closer than this are one color
MIN_COLOR_SHARE = 0.02  # a color counts when it covers this much of the page
LINE_DARKER = 15.0  # a line pixel is visible when this much darker than its fill


@dataclass(frozen=True)
class PageRegions:
    """A page's regions and line pixels, computed once for every coloring of it."""

    regions: Regions
    line: np.ndarray  # (H, W) bool: ink pixels of the page
    border_ids: np.ndarray  # region ids touching the border

    @classmethod
    def of(cls, page_l: np.ndarray) -> PageRegions:
        threshold = ink_threshold(page_l)  # the fill's own: light pencil lines count
        regions = find_regions(page_l, threshold=threshold)
        labels = regions.labels
        edge = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
        border = np.unique(edge[edge > 0])
        return cls(regions, page_l < threshold, border)


def region_colors(lab: np.ndarray, pr: PageRegions) -> tuple[np.ndarray, np.ndarray]:
    """(colors (K, 3) median LAB of each region, area (K,) share of the page)."""
    labels = pr.regions.labels
    count = pr.regions.count
    flat = labels.reshape(-1)
    keep = flat > 0
    ids = flat[keep]
    values = lab.reshape(-1, 3)[keep]
    order = np.argsort(ids, kind="stable")
    ids, values = ids[order], values[order]
    counts = np.bincount(ids, minlength=count + 1)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    colors = np.zeros((count + 1, 3))
    for rid in np.nonzero(counts)[0]:
        colors[rid] = np.median(values[starts[rid] : starts[rid] + counts[rid]], axis=0)
    area = counts / labels.size
    return colors[1:], area[1:]


def distinct_region_colors(lab: np.ndarray, pr: PageRegions) -> int:
    """How many clearly different colors cover the page's regions (see module doc)."""
    colors, area = region_colors(lab, pr)
    order = np.argsort(-area)
    clusters: list[tuple[np.ndarray, float]] = []
    for i in order:
        if area[i] <= 0:
            continue
        for k, (center, share) in enumerate(clusters):
            if deltaE_ciede2000(center, colors[i]) < SAME_COLOR_DE:
                clusters[k] = (center, share + float(area[i]))
                break
        else:
            clusters.append((colors[i], float(area[i])))
    return sum(1 for _, share in clusters if share >= MIN_COLOR_SHARE)


def background_lightness(lab: np.ndarray, pr: PageRegions) -> float:
    """Mean L* of the regions touching the page's border (100 when there are none)."""
    if pr.border_ids.size == 0:
        return 100.0
    mask = np.isin(pr.regions.labels, pr.border_ids)
    return float(lab[..., 0][mask].mean())


def line_visibility(lab: np.ndarray, pr: PageRegions) -> float:
    """Share of line pixels at least LINE_DARKER L* darker than their region's fill."""
    if not pr.line.any():
        return 1.0
    colors, _ = region_colors(lab, pr)
    fill_l = np.concatenate(([100.0], colors[:, 0]))  # id 0: no region
    around = fill_l[pr.regions.assigned[pr.line]]
    return float((lab[..., 0][pr.line] <= around - LINE_DARKER).mean())


def coloring_figures(rgb: np.ndarray, pr: PageRegions) -> dict[str, float]:
    """Every truth-free figure of one coloring (H, W, 3) uint8."""
    from training.evaluate import colorfulness

    lab = rgb2lab(rgb)
    return {
        "colorfulness": colorfulness(rgb),
        "region_colors": float(distinct_region_colors(lab, pr)),
        "background_l": background_lightness(lab, pr),
        "line_visibility": line_visibility(lab, pr),
    }

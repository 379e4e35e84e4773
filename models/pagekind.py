"""Is a page line art (a coloring page) or a grayscale photo?

The two are colored differently (see DESIGN.md): line art gets full predicted LAB
composited under its lines, photos keep their own lightness. The clues, measured on
the page's lightness relative to its paper (so a gray scan still counts as white):

- paper: most of a coloring page is near-white;
- few mid-tones away from edges: line art's only grays are anti-aliased line edges,
  a photo's grays are smooth shading, far from any strong edge;
- edge density: a coloring page has thin, strong edges and nothing else.

`detect_page_kind` returns the decision with its numbers, so it can be logged and
overridden (`ColorizeOptions(kind="photo")`, `colorbot colorize --kind`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from models.options import PAGE_KINDS

KINDS = PAGE_KINDS  # what detect_page_kind answers

# Analysis runs on at most this many pixels along the long side (strided, not
# smoothed: smoothing would turn thin lines into the mid-tones we look for).
_ANALYSIS_SIDE = 512


@dataclass(frozen=True)
class PageKind:
    kind: str  # "lineart" | "photo"
    paper: float  # lightness of the paper (95th percentile of L)
    white_share: float  # share of pixels within ~12 L of the paper
    smooth_midtone_share: float  # share of mid-tones not next to a strong edge
    edge_share: float  # share of pixels on a strong edge


def paper_level(lightness: np.ndarray) -> float:
    """The page's paper lightness: a high percentile, robust to a few specks."""
    return float(np.percentile(lightness, 95))


def detect_page_kind(lightness: np.ndarray) -> PageKind:
    """Classify a page from its CIE L* (H, W) in [0, 100]."""
    step = max(1, int(np.ceil(max(lightness.shape) / _ANALYSIS_SIDE)))
    small = lightness[::step, ::step].astype(np.float32)
    paper = paper_level(small)
    if paper < 50.0:
        # A dark picture has no paper; only a photo (or a night scene) looks like this.
        return PageKind("photo", paper, 0.0, 1.0, 0.0)
    rel = np.clip(small * (100.0 / paper), 0.0, 100.0)
    white = rel > 88.0
    dark = rel < 40.0
    mid = ~white & ~dark
    gy = ndimage.sobel(rel, axis=0)
    gx = ndimage.sobel(rel, axis=1)
    edge = np.hypot(gx, gy) > 80.0  # sobel of a 100 -> 0 step is ~400; shading is far below
    near_edge = ndimage.binary_dilation(edge, iterations=2)
    white_share = float(white.mean())
    smooth_mid = float((mid & ~near_edge).mean())
    edge_share = float(edge.mean())
    is_lineart = white_share >= 0.5 and smooth_mid <= 0.06 and edge_share <= 0.35
    return PageKind(
        "lineart" if is_lineart else "photo", paper, white_share, smooth_mid, edge_share
    )

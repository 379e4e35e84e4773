"""Turning color pictures into training pages.

`coloring_book` makes a coloring-book page: dark outlines on white paper, drawn where the
picture has edges (Canny on each channel of a smoothed CIE LAB image, which finds both
soft shading edges and the boundaries between flat color regions), cleaned of specks
and thickened to the requested line weight. `photo_page` keeps a photo's lightness
(CIE L*), for members that color grayscale photos. Both return mode "L" images of the
picture's size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage import color as skcolor
from skimage import feature, morphology


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def line_mask(
    image: Image.Image,
    *,
    line_weight: float = 3.0,
    detail: float = 0.5,
) -> np.ndarray:
    """Boolean (H, W) mask of the page's lines for a color picture.

    line_weight: stroke width in pixels of the output (about; >= 1).
    detail: 0 keeps only strong outlines between very different regions, 1 also draws
        faint edges and small details.
    """
    detail = float(np.clip(detail, 0.0, 1.0))
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    lab = skcolor.rgb2lab(rgb)  # (H, W, 3): L in [0, 100], a/b about [-110, 110]
    long_side = max(rgb.shape[:2])
    # Smoothing scale follows the picture size (a 1024 px picture needs more blur than a
    # 256 px one to ignore the same texture) and drops as detail rises.
    sigma = _lerp(2.2, 0.8, detail) * max(1.0, long_side / 384)
    # Gradient thresholds in LAB units per pixel: region boundaries of flat art jump by
    # tens of units; shading and texture by a few.
    high = _lerp(14.0, 3.5, detail)
    low = high * 0.5
    edges = np.zeros(rgb.shape[:2], dtype=bool)
    for channel, weight in ((0, 1.0), (1, 0.8), (2, 0.8)):
        edges |= feature.canny(
            lab[..., channel] * weight, sigma=sigma, low_threshold=low, high_threshold=high
        )
    # Art that already has dark outlines (clip art, cartoons): Canny finds both sides of
    # each stroke, a pixel or three apart. Marking the thin dark strokes themselves
    # (black top-hat: darker than the surroundings within a few pixels; big dark fills
    # are not thin and are left to the edges) lets both sides and the stroke merge into
    # one line when thinned below, instead of a double or beaded outline.
    stroke_radius = max(2, round(3 * long_side / 256))
    footprint = morphology.disk(stroke_radius) > 0
    lightness = lab[..., 0]
    thin_dark = ndi.grey_closing(lightness, footprint=footprint) - lightness
    edges |= thin_dark > _lerp(30.0, 15.0, detail)
    # The L, a and b edges of one boundary lie a pixel or two apart: merge them into one
    # line (close, then thin back to 1 px) instead of drawing a double outline.
    edges = morphology.skeletonize(ndi.binary_closing(edges, structure=morphology.disk(1) > 0))
    # Short isolated edge bits are texture or noise, not outlines.
    min_len = int(round(_lerp(40.0, 6.0, detail) * max(1.0, long_side / 256)))
    edges = morphology.remove_small_objects(edges, max_size=max(2, min_len), connectivity=2)
    # Thicken the 1-px Canny edges to the line weight.
    radius = max(0.0, (float(line_weight) - 1.0) / 2.0)
    if radius > 0:
        edges = ndi.binary_dilation(edges, structure=morphology.disk(int(np.ceil(radius))) > 0)
    return np.asarray(edges)


def coloring_book(
    image: Image.Image,
    *,
    line_weight: float = 3.0,
    detail: float = 0.5,
    antialias: bool = True,
) -> Image.Image:
    """A coloring-book page (mode L: dark lines, white paper) of a color picture.

    See `line_mask` for the parameters. With `antialias` the line edges are softened by
    a half-pixel blur, like a scanned or rendered page; the line cores stay black.
    """
    mask = line_mask(image, line_weight=line_weight, detail=detail)
    page = np.where(mask, 0.0, 255.0).astype(np.float32)
    if antialias:
        page = ndi.gaussian_filter(page, 0.5)
        page = np.where(mask, np.minimum(page, 40.0), page)  # line cores stay dark
    return Image.fromarray(np.clip(page + 0.5, 0, 255).astype(np.uint8), mode="L")


def photo_page(image: Image.Image) -> Image.Image:
    """A grayscale photo page: the picture's CIE L* scaled to 0..255 (mode L).

    L* (not Pillow's luma) so the page's lightness is exactly what a photo member keeps.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    lightness = skcolor.rgb2lab(rgb)[..., 0]  # (H, W) in [0, 100]
    return Image.fromarray(np.clip(lightness * 2.55 + 0.5, 0, 255).astype(np.uint8), mode="L")


def make_page(image: Image.Image, kind: str, *, line_weight: float = 3.0,
              detail: float = 0.5) -> Image.Image:
    """The page for a pair of the given kind ("lineart" or "photo")."""
    if kind == "photo":
        return photo_page(image)
    if kind == "lineart":
        return coloring_book(image, line_weight=line_weight, detail=detail)
    raise ValueError(f"kind must be lineart or photo, not {kind!r}")

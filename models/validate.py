"""Is a candidate version fit to serve? The check promotion runs before marking anything.

A candidate must load; have the served version's architecture, config and tensor
shapes; give finite predictions on fixed probe pages (drawn here, so the check needs
no files); and not be degenerate: its prediction is not one flat color, and the lines
of the colored probe pages stay visibly darker than their fills. The colorings are made
by the same `Colorizer` that serves users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors import safe_open

from models.family import Family, build_network
from models.pipeline import Colorizer, MemberPrediction
from models.registry import FamilyMember

PROBE_SIZE = (160, 120)  # (width, height) of each probe page
# The prediction's spread over all probe pixels (network scale, per channel) below
# which a member paints one flat color whatever the page.
FLAT_SPREAD = 1e-4
# Lines must stay this much darker (8-bit gray, medians) than the fills beside them.
MIN_LINE_CONTRAST = 10.0


def probe_pages() -> list[Image.Image]:
    """Three small coloring pages: shapes, a landscape with a house, a flower."""
    width, height = PROBE_SIZE
    pages = []
    for draw_page in (_shapes, _house, _flower):
        page = Image.new("RGB", (width, height), "white")
        draw_page(ImageDraw.Draw(page), width, height)
        pages.append(page)
    return pages


def _shapes(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.ellipse((10, 10, 70, 70), outline="black", width=3)
    d.rectangle((85, 15, 150, 60), outline="black", width=3)
    d.polygon([(20, 110), (60, 78), (100, 110)], outline="black", width=3)
    d.line((110, 75, 150, 110), fill="black", width=2)


def _house(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    d.line((0, 80, w, 80), fill="black", width=3)  # the horizon
    d.rectangle((40, 45, 100, 100), outline="black", width=3)
    d.polygon([(35, 45), (70, 15), (105, 45)], outline="black", width=3)
    d.rectangle((62, 70, 78, 100), outline="black", width=2)
    d.ellipse((120, 10, 150, 40), outline="black", width=2)  # the sun


def _flower(d: ImageDraw.ImageDraw, w: int, h: int) -> None:
    cx, cy = 80, 45
    for dx, dy in ((0, -22), (22, 0), (0, 22), (-22, 0)):
        d.ellipse((cx + dx - 14, cy + dy - 14, cx + dx + 14, cy + dy + 14),
                  outline="black", width=2)
    d.ellipse((cx - 9, cy - 9, cx + 9, cy + 9), outline="black", width=3)
    d.line((cx, cy + 36, cx, h - 5), fill="black", width=3)
    d.ellipse((cx + 4, 85, cx + 34, 100), outline="black", width=2)  # a leaf


def _shapes_of_file(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="pt") as fh:
        return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}


def _shape_mismatch(parent: FamilyMember, path: Path) -> str | None:
    expected = {k: tuple(v.shape) for k, v in build_network(parent).state_dict().items()}
    found = _shapes_of_file(path)
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"tensors missing from the weights: {', '.join(missing[:3])}"
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        return f"tensors the architecture does not have: {', '.join(unexpected[:3])}"
    for key, shape in expected.items():
        if found[key] != shape:
            return f"tensor {key} has shape {list(found[key])}, the served version {list(shape)}"
    return None


def _fill_and_line_pixels(page: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Masks of line pixels and of paper pixels at least 3 px away from any line."""
    gray = np.asarray(page.convert("L"))
    lines = gray < 128
    near = lines.copy()
    for axis in (0, 1):
        for shift in (-3, -2, -1, 1, 2, 3):
            near |= np.roll(lines, shift, axis=axis)
    return lines, ~near


def validate_candidate(
    root: Path, parent: FamilyMember, candidate: FamilyMember
) -> str | None:
    """None when `candidate` is fit to replace the served `parent`; else a one-line reason."""
    if candidate.architecture != parent.architecture:
        return (f"architecture {candidate.architecture!r}, "
                f"the served version's {parent.architecture!r}")
    if candidate.config != parent.config:
        changed = sorted(
            k for k in set(candidate.config) | set(parent.config)
            if candidate.config.get(k) != parent.config.get(k)
        )
        return f"config differs from the served version's ({', '.join(changed)})"
    if candidate.kind != parent.kind:
        return f"page kind {candidate.kind!r}, the served version's {parent.kind!r}"
    path = Path(root) / candidate.weights
    try:
        mismatch = _shape_mismatch(parent, path)
    except Exception as exc:  # a truncated or foreign file: safetensors says why
        return f"weights do not load ({_one_line(exc)})"
    if mismatch:
        return mismatch
    try:
        colorizer = Colorizer(Family(Path(root), [candidate]), device="cpu")
        colorizer.network(candidate.name)
    except Exception as exc:
        return f"does not load ({_one_line(exc)})"
    try:
        pages = [colorizer.prepare(image) for image in probe_pages()]
        predictions = colorizer.predict(candidate, pages)
    except Exception as exc:
        return f"fails on a probe page ({_one_line(exc)})"
    labs = [p.lab if isinstance(p, MemberPrediction) else p for p in predictions]
    if not all(torch.isfinite(lab).all() for lab in labs):
        return "gives non-finite output (NaN or inf) on the probe pages"
    spread = torch.cat([lab.flatten(1) for lab in labs], dim=1).std(dim=1)  # (C,)
    if float(spread.max()) < FLAT_SPREAD:
        return "predicts one flat color whatever the page"
    fills, lines = [], []
    try:
        with torch.inference_mode():
            for image, page, prediction in zip(probe_pages(), pages, predictions, strict=True):
                colored = np.asarray(colorizer.composite(page, prediction).convert("L"))
                line_mask, fill_mask = _fill_and_line_pixels(image)
                lines.append(colored[line_mask])
                fills.append(colored[fill_mask])
    except Exception as exc:
        return f"fails to color a probe page ({_one_line(exc)})"
    contrast = float(np.median(np.concatenate(fills))) - float(np.median(np.concatenate(lines)))
    if contrast < MIN_LINE_CONTRAST:
        return f"lines are not visible on its colorings (contrast {contrast:.0f} of 255)"
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."

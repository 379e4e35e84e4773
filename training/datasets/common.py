"""What the dataset builders share: a progress bar, random crops, license copies."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from training import collections as reg


def progress_bar(items: Iterable, total: int, desc: str, progress: bool) -> Iterable:
    """`items` with a progress bar in pictures (none when `progress` is False)."""
    return tqdm(items, total=total, desc=desc, unit="pic", disable=not progress, smoothing=0.05)


def keep_copyright(root: Path, package: str, out: Path) -> None:
    """Copy a package's debian/copyright into the dataset's licenses/ folder."""
    text = reg.deb_copyright(root, package)
    if text:
        (out / "licenses").mkdir(parents=True, exist_ok=True)
        (out / "licenses" / f"{package}.copyright").write_text(text, encoding="utf-8")


def crop_boxes(width: int, height: int, count: int, rng: Any) -> list[tuple[int, int, int, int]]:
    """Random square crops, side 20..100 % of the short side (scale variety)."""
    short = min(width, height)
    boxes = []
    for _ in range(count):
        side = max(16, int(short * rng.uniform(0.2, 1.0)))
        x = int(rng.integers(0, width - side + 1))
        y = int(rng.integers(0, height - side + 1))
        boxes.append((x, y, x + side, y + side))
    return boxes

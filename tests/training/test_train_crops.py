"""PairCrops, the training loader: page and color cropped together, flipped only left to
right, and read through the one manifest reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from training.datasets.manifest import MANIFEST, DatasetWriter
from training.train import PairCrops, TrainConfig, read_manifest

torch = pytest.importorskip("torch")


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    """Pairs whose page is dark exactly where the color is red (the top-left block)."""
    with DatasetWriter(tmp_path, "toy", "CC0-1.0") as w:
        for i in range(12):
            color = np.full((40, 60, 3), 255, np.uint8)
            color[:20, :30] = (220, 20, 20)
            color[20:, 30:] = (20, 20 + 10 * i, 220)
            page = np.full((40, 60), 255, np.uint8)
            page[:20, :30] = 0
            w.add(Image.fromarray(color), Image.fromarray(page), f"p{i}")
    return tmp_path


def _crops(root: Path, **cfg: Any) -> PairCrops:
    config = TrainConfig(dataset=str(root), out_dir=str(root / "run"), load_size=60, **cfg)
    return PairCrops(root, read_manifest(root), config)


def test_page_and_color_are_cropped_together(dataset_root: Path) -> None:
    crops = _crops(dataset_root, crop_size=24)
    for seed in range(30):
        page, color = crops[seed % len(crops), seed]
        assert page.shape == (1, 24, 24) and color.shape == (3, 24, 24)
        red = (color[0] > 180) & (color[1] < 80) & (color[2] < 80)
        dark = page[0] < 80
        assert (red == dark).float().mean() > 0.9  # resampling blurs only the borders


def test_flips_are_left_right_only(dataset_root: Path) -> None:
    """The dark block is top-left; a flip may move it right, nothing may move it down."""
    crops = _crops(dataset_root, crop_size=60, scale_min=1.0, scale_max=1.0)
    sides = set()
    for seed in range(40):
        page, _ = crops[seed % len(crops), seed]
        dark = page[0] < 128
        rows = torch.nonzero(dark.any(dim=1)).flatten()
        cols = torch.nonzero(dark.any(dim=0)).flatten()
        assert int(rows.min()) == 10  # 40 rows padded to 60 with paper: top still on top
        sides.add("left" if int(cols.min()) == 0 else "right")
    assert sides == {"left", "right"}


def test_a_torn_line_inside_the_manifest_is_skipped(dataset_root: Path) -> None:
    # An interrupted build leaves half a line; the next build appends after it.
    with (dataset_root / MANIFEST).open("a", encoding="utf-8") as fh:
        fh.write('{"id": "abc", "pa\n')
    with DatasetWriter(dataset_root, "toy", "CC0-1.0") as w:
        w.add(Image.new("RGB", (8, 8), "red"), Image.new("L", (8, 8), 0), "late")
    assert len(read_manifest(dataset_root)) == 13

"""PairDataset: shapes, value ranges, aligned augmentation, no rotation."""

import random

import numpy as np
import pytest
from PIL import Image

from training.datasets.manifest import DatasetWriter

torch = pytest.importorskip("torch")
from training.datasets.torch_dataset import PairDataset  # noqa: E402


@pytest.fixture
def dataset_root(tmp_path):
    """Pairs whose page marks the color's red top-left corner, so alignment is checkable."""
    with DatasetWriter(tmp_path, "toy", "CC0-1.0") as w:
        for i in range(12):
            color = np.full((40, 60, 3), 255, np.uint8)
            color[:20, :30] = (220, 20, 20)
            color[20:, 30:] = (20, 20 + 10 * i, 220)
            page = np.full((40, 60), 255, np.uint8)
            page[:20, :30] = 0  # page dark exactly where the color is red
            w.add(Image.fromarray(color), Image.fromarray(page), f"p{i}")
    return tmp_path


def test_eval_view_is_fitted_on_white(dataset_root):
    ds = PairDataset(dataset_root, None, 32, train=False)
    assert len(ds) == 12
    page, color = ds[0]
    assert page.shape == (1, 32, 32) and color.shape == (3, 32, 32)
    assert page.dtype == torch.float32 and 0 <= float(page.min()) and float(page.max()) <= 1
    # 60x40 fitted into 32x32 is 32x21, centered: white paper rows above and below.
    assert torch.all(page[:, :5] == 1) and torch.all(color[:, :5] == 1)
    assert torch.equal(ds[0][0], page)  # deterministic


def test_train_views_keep_page_and_color_aligned(dataset_root):
    random.seed(0)
    ds = PairDataset(dataset_root, None, 24, train=True)
    for i in range(30):
        page, color = ds[i % len(ds)]
        assert page.shape == (1, 24, 24) and color.shape == (3, 24, 24)
        red = (color[0] > 0.7) & (color[1] < 0.3) & (color[2] < 0.3)  # (24, 24)
        dark = page[0] < 0.3
        # Where the color is clearly red the page is dark and vice versa (resampling
        # blurs only the borders).
        agree = (red == dark).float().mean()
        assert agree > 0.9


def test_flip_is_horizontal_only(dataset_root):
    """The red block is top-left; flips may move it right, nothing may move it down."""
    random.seed(1)
    ds = PairDataset(dataset_root, None, 60, train=True, min_scale=1.0, max_scale=1.0)
    sides = set()
    for i in range(40):
        page, _ = ds[i % len(ds)]
        dark = page[0] < 0.5
        rows = torch.nonzero(dark.any(dim=1)).flatten()
        cols = torch.nonzero(dark.any(dim=0)).flatten()
        assert int(rows.min()) == 0  # still at the top: no vertical flip, no rotation
        sides.add("left" if int(cols.min()) == 0 else "right")
    assert sides == {"left", "right"}


def test_split_filter(dataset_root):
    all_splits = {ds.record(i).split for ds in [PairDataset(dataset_root, None, 8, False)]
                  for i in range(12)}
    for split in all_splits:
        ds = PairDataset(dataset_root, split, 8, train=False)
        assert len(ds) and all(ds.record(i).split == split for i in range(len(ds)))

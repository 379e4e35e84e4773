"""A torch Dataset over one or more pair folders (the format in `training.datasets`).

Augmentation lives here, at load time, not in the stored pairs: random scale (zoom in and
out) and crop, and horizontal flips. A mirror keeps up up, so it is safe; rotations are
never applied, because a horizontal line means something else than a vertical one (the
sky sits above the horizon) and rotated pictures would teach wrong colors.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from training.datasets.manifest import PairRecord, read_manifest


class PairDataset(Dataset):
    """(page, color) tensors: page `(1, S, S)` L in [0, 1], color `(3, S, S)` RGB in [0, 1].

    roots: one dataset folder or several (their pairs are concatenated).
    split: "train", "val", "test", or None for all pairs.
    size: S, the side of the square samples.
    train: random scale in [min_scale, max_scale] relative to "cover S x S", random crop
        and horizontal flip; otherwise deterministic: the whole picture fitted into
        S x S and centered on white paper (fixed validation pages look the same every
        epoch).
    The trainer converts color to LAB itself.
    """

    def __init__(
        self,
        roots: str | Path | Sequence[str | Path],
        split: str | None,
        size: int,
        train: bool,
        *,
        min_scale: float = 0.75,
        max_scale: float = 1.5,
        flip: bool = True,
    ) -> None:
        if isinstance(roots, (str, Path)):
            roots = [roots]
        self.size = size
        self.train = train
        self.min_scale, self.max_scale, self.flip = min_scale, max_scale, flip
        self.items: list[tuple[Path, PairRecord]] = [
            (Path(root), rec)
            for root in roots
            for rec in read_manifest(root)
            if split is None or rec.split == split
        ]
        # Stable order (manifest order depends on build order) for fixed val sheets.
        self.items.sort(key=lambda item: item[1].id)

    def __len__(self) -> int:
        return len(self.items)

    def record(self, index: int) -> PairRecord:
        return self.items[index][1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        root, rec = self.items[index]
        with Image.open(root / rec.page) as page_file, Image.open(root / rec.color) as color_file:
            page = page_file.convert("L")
            color = color_file.convert("RGB")
        if self.train:
            page, color = self._random_view(page, color)
        else:
            page, color = self._fitted_view(page, color)
        page_t = torch.from_numpy(np.asarray(page, dtype=np.float32) / 255.0)[None]  # (1, S, S)
        color_t = torch.from_numpy(np.asarray(color, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return page_t, color_t.contiguous()  # (1, S, S), (3, S, S)

    def _random_view(self, page: Image.Image, color: Image.Image):
        s = self.size
        cover = s / min(page.size)
        scale = cover * random.uniform(self.min_scale, self.max_scale)
        w, h = max(1, round(page.width * scale)), max(1, round(page.height * scale))
        page = page.resize((w, h), Image.Resampling.BILINEAR)
        color = color.resize((w, h), Image.Resampling.BILINEAR)
        # Zoomed out below S: place on white paper at a random spot.
        cw, ch = max(w, s), max(h, s)
        if (cw, ch) != (w, h):
            x, y = random.randint(0, cw - w), random.randint(0, ch - h)
            page, color = _on_paper(page, color, (cw, ch), (x, y))
        x, y = random.randint(0, cw - s), random.randint(0, ch - s)
        page = page.crop((x, y, x + s, y + s))
        color = color.crop((x, y, x + s, y + s))
        if self.flip and random.random() < 0.5:
            page = page.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            color = color.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return page, color

    def _fitted_view(self, page: Image.Image, color: Image.Image):
        s = self.size
        scale = s / max(page.size)
        w, h = max(1, round(page.width * scale)), max(1, round(page.height * scale))
        if (w, h) != page.size:
            page = page.resize((w, h), Image.Resampling.BILINEAR)
            color = color.resize((w, h), Image.Resampling.BILINEAR)
        if (w, h) != (s, s):
            page, color = _on_paper(page, color, (s, s), ((s - w) // 2, (s - h) // 2))
        return page, color


def _on_paper(page: Image.Image, color: Image.Image, size: tuple[int, int],
              at: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    page_canvas = Image.new("L", size, 255)
    color_canvas = Image.new("RGB", size, (255, 255, 255))
    page_canvas.paste(page, at)
    color_canvas.paste(color, at)
    return page_canvas, color_canvas

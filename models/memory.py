"""A member's memory: the pictures it grew up on, to recall by how their pages look.

Recognising the drawing is worth more than brute-force training (measured: the true
colors of look-alike training pages beat a network trained for half an hour). So each
member keeps a small memory of its own collection — that is its point of view — and
colors a region partly from what the look-alike pages it remembers had there:

- **descriptor** of a page: its ink (1 - L/100) blurred and squeezed to `SIDE` x `SIDE`
  (aspect ignored), mean removed, unit length; two pages whose lines fall in the same
  places have a high dot product;
- **recall**: the `k` most alike remembered pages, weighted by softmax(similarity / T);
- **vote per region**: each recalled page's a/b cell under each of the region's
  working-resolution pixels (its color map stretched over the page), weighted; the
  region's histogram over cells is the memory's opinion, which the decoder adds to the
  network's (`models.decoder`).

Stored as one safetensors file per member: `descriptors` (N, SIDE*SIDE) int8 and
`cells` (N, SIDE, SIDE) uint8 (the a/b cell of the true color; `bins` in metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

SIDE = 32  # descriptor and color-map side


def page_descriptor(lightness: np.ndarray) -> np.ndarray:
    """(SIDE*SIDE,) float32 unit vector of a page's ink layout, from its L (H, W)."""
    ink = 1.0 - np.clip(lightness.astype(np.float32), 0.0, 100.0) / 100.0
    h, w = ink.shape
    # Area-average down to a 4x grid first (keeps thin lines), then blur and sample.
    t = torch.from_numpy(ink)[None, None]
    small = torch.nn.functional.adaptive_avg_pool2d(t, (SIDE * 2, SIDE * 2))[0, 0].numpy()
    small = ndimage.gaussian_filter(small, 1.5)
    small = small.reshape(SIDE, 2, SIDE, 2).mean(axis=(1, 3)).reshape(-1)
    small = small - small.mean()
    norm = float(np.linalg.norm(small))
    return (small / norm if norm > 1e-6 else small).astype(np.float32)


@dataclass
class ColorMemory:
    descriptors: torch.Tensor  # (N, D) float32 unit rows
    cells: torch.Tensor  # (N, SIDE, SIDE) long: a/b cell of each remembered color map
    bins: int  # a/b cells per axis (the member's grid)

    @classmethod
    def load(cls, path: str | Path) -> ColorMemory:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            desc = fh.get_tensor("descriptors").float() / 127.0
            cells = fh.get_tensor("cells").long()
        desc = desc / desc.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return cls(desc, cells, int(meta.get("bins", "15")))

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        desc = (self.descriptors * 127.0).round().clamp(-127, 127).to(torch.int8)
        save_file({"descriptors": desc.contiguous(),
                   "cells": self.cells.to(torch.uint8).contiguous()},
                  str(path), metadata={"bins": str(self.bins), "side": str(SIDE)})

    def recall(self, descriptor: np.ndarray, k: int = 8,
               temperature: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices (k,), weights (k,) summing to 1) of the most alike pages."""
        sims = self.descriptors @ torch.from_numpy(descriptor)
        k = min(k, sims.numel())
        top, idx = torch.topk(sims, k)
        return idx, torch.softmax(top / temperature, dim=0)

    def region_votes(self, descriptor: np.ndarray, index: torch.Tensor, ids: torch.Tensor,
                     n_ids: int, shape: tuple[int, int], k: int = 8) -> torch.Tensor:
        """(n_ids, Q) share of recalled color under each region's pixels.

        `index` (N,) flat indices into the (h, w) working grid, `ids` (N,) their regions.
        """
        h, w = shape
        q = self.bins * self.bins
        votes = torch.zeros(n_ids, q)
        if index.numel() == 0 or self.cells.shape[0] == 0:
            return votes
        picks, weights = self.recall(descriptor, k)
        ys = ((index // w).float() + 0.5) * (SIDE / h)
        xs = ((index % w).float() + 0.5) * (SIDE / w)
        cell_at = ys.long().clamp(0, SIDE - 1) * SIDE + xs.long().clamp(0, SIDE - 1)  # (N,)
        flat = self.cells[picks].reshape(len(picks), -1)  # (k, SIDE*SIDE)
        for row, weight in zip(flat, weights, strict=True):
            votes.index_put_((ids, row[cell_at]), weight.expand(ids.numel()), accumulate=True)
        return votes / votes.sum(dim=1, keepdim=True).clamp_min(1e-9)


def build_memory(pairs, bins: int) -> ColorMemory:
    """A memory from `(page L (H, W) float, color RGB (H, W, 3) uint8)` pairs."""
    from models.colorspace import normalize_lab, rgb_to_lab

    descs, cells = [], []
    edges = bins / 2.0
    for page_l, rgb in pairs:
        descs.append(page_descriptor(page_l))
        t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float()[None] / 255.0
        small = torch.nn.functional.interpolate(t, size=(SIDE, SIDE), mode="area")[0]
        ab = normalize_lab(rgb_to_lab(small))[1:]  # (2, SIDE, SIDE) network scale
        cell = ((ab.clamp(-1.0, 1.0 - 1e-6) + 1.0) * edges).long()
        cells.append(cell[0] * bins + cell[1])
    desc = torch.from_numpy(np.stack(descs)) if descs else torch.zeros(0, SIDE * SIDE)
    grid = torch.stack(cells) if cells else torch.zeros(0, SIDE, SIDE, dtype=torch.long)
    return ColorMemory(desc, grid, bins)

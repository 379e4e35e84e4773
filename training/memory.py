"""Building a member's memory (`models/memory.py`) from its dataset's training pairs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

from models.memory import ColorMemory, build_memory

MAX_PAGES = 3000  # a memory this size is ~3 MB and recalls in ~2 ms on a CPU


def memory_from_dataset(dataset: str | Path, bins: int, *, limit: int = MAX_PAGES,
                        seed: int = 0) -> ColorMemory:
    """The training split of `dataset` (one folder or several, comma-joined), at most
    `limit` pairs (a fixed random choice), as a memory."""
    from models.images import page_lightness
    from training.train import dataset_folders, load_pair, read_manifest

    rows = read_manifest(dataset, "train")
    if len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)

    def pairs():
        for row in rows:  # rows of several folders carry their own `_root`
            page, color = load_pair(dataset_folders(dataset)[0], row, 128)
            yield page_lightness(Image.fromarray(page).convert("RGB")), np.asarray(color)

    return build_memory(pairs(), bins)

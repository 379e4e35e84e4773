"""Building a member's memory (`models/memory.py`) from its dataset's training pairs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

from models.memory import ColorMemory, build_memory
from models.shape import ShapeEncoder

MAX_PAGES = 6000  # ~1.8 KB a page (key + color map): a memory this size is ~11 MB
# The family's shared memory (`colorbot remember-shared`): every emoji set but the
# held-out one, one drawing per thing, ~1.2 KB a page; a member skips the rows of its
# own collection.
SHARED_MEMORY = "shared.memory.safetensors"
SHARED_MAX_PAGES = 12000
# The shape embedding every memory keys by (trained by `colorbot shape-train`).
SHAPE_ENCODER = Path(__file__).parent / "base" / "shape.safetensors"


def default_encoder() -> ShapeEncoder | None:
    """The shipped shape encoder, or None when it is not there (layout keys then)."""
    if not SHAPE_ENCODER.exists():
        return None
    from training.shape import load_encoder

    return load_encoder(SHAPE_ENCODER)


def memory_from_dataset(dataset: str | Path, bins: int, *, limit: int = MAX_PAGES,
                        seed: int = 0, encoder: ShapeEncoder | None = None) -> ColorMemory:
    """The training split of `dataset` (one folder or several, comma-joined), one drawing
    per thing (skin-tone variants left out), at most `limit` pairs (a fixed random
    choice), as a memory keyed by `encoder`."""
    from models.images import page_lightness
    from training.shape import skin_tone_variants
    from training.train import dataset_folders, load_pair, read_manifest

    rows = read_manifest(dataset, "train")
    # Judged on every split: a variant's default drawing may sit in another split.
    tones = skin_tone_variants(row["source"] for row in read_manifest(dataset, None))
    rows = [row for row in rows if row["source"] not in tones]
    if len(rows) > limit:
        rows = random.Random(seed).sample(rows, limit)

    def pairs():
        for row in rows:  # rows of several folders carry their own `_root`
            page, color = load_pair(dataset_folders(dataset)[0], row, 128)
            yield (page_lightness(Image.fromarray(page).convert("RGB")), np.asarray(color),
                   row.get("collection", ""))

    return build_memory(pairs(), bins, encoder)

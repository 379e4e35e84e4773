"""A member's memory: recall by look, region votes, storage, and its use in the pipeline."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from models.memory import SIDE, ColorMemory, build_memory, page_descriptor
from models.regions import find_regions, region_samples
from models.unet import ab_bin_centers

BINS = 15


def drawing(kind: str, color: tuple[int, int, int], size: int = 128):
    """(page L, color RGB) of a ball (left half of the page) or a tower (right half)."""
    page = Image.new("L", (size, size), 255)
    pic = Image.new("RGB", (size, size), "white")
    for im, fill, line in ((page, None, 0), (pic, color, (0, 0, 0))):
        d = ImageDraw.Draw(im)
        if kind == "ball":
            d.ellipse((8, 30, 60, 82), fill=fill, outline=line, width=3)
        else:
            d.rectangle((80, 10, 110, 120), fill=fill, outline=line, width=3)
    return np.asarray(page, dtype=np.float32) * (100 / 255), np.asarray(pic)


def test_recall_finds_the_drawing_that_looks_alike():
    memory = build_memory([drawing("ball", (220, 30, 30)), drawing("tower", (30, 60, 220))],
                          BINS)
    idx, weights = memory.recall(page_descriptor(drawing("ball", (0, 0, 0))[0]), k=2)
    assert int(idx[0]) == 0 and float(weights[0]) > 0.9


def test_region_votes_carry_the_remembered_color_into_the_region(tmp_path):
    red, blue = (220, 30, 30), (30, 60, 220)
    memory = build_memory([drawing("ball", red), drawing("tower", blue)], BINS)
    memory.save(tmp_path / "m.safetensors")
    memory = ColorMemory.load(tmp_path / "m.safetensors")  # int8 descriptors round trip
    page_l, _ = drawing("ball", (0, 0, 0))
    regions = find_regions(page_l)
    samples = region_samples(regions, (64, 64))
    ids = torch.repeat_interleave(torch.arange(samples.counts.numel()), samples.counts)
    votes = memory.region_votes(page_descriptor(page_l), samples.index, ids,
                                samples.counts.numel(), samples.size, k=1)
    ball = int(regions.labels[56, 34])
    centers = ab_bin_centers(BINS) * 110
    a, b = centers[int(votes[ball].argmax())]
    assert a > 30 and abs(float(b)) < 60  # red: strong +a
    outside = int(regions.labels[2, 2])
    assert float(centers[int(votes[outside].argmax())].norm()) < 10  # paper stays gray
    assert torch.allclose(votes[ball].sum(), torch.tensor(1.0))


def test_memory_cells_match_the_training_grid():
    from training.train import ab_cell_index

    _, rgb = drawing("tower", (30, 60, 220), size=SIDE)
    memory = build_memory([(np.full((SIDE, SIDE), 100.0), rgb)], BINS)
    from models.colorspace import normalize_lab, rgb_to_lab

    rgb_t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255
    ab = normalize_lab(rgb_to_lab(rgb_t))[1:]
    assert torch.equal(memory.cells[0], ab_cell_index(ab, BINS))

"""A member's memory: recall by look, region votes in the ink frame, storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from models.memory import (
    SIDE,
    ColorMemory,
    MemberMemory,
    MemoryFormatError,
    RegionRecall,
    build_memory,
    color_cells,
    recall_key,
)
from models.regions import find_regions, region_samples
from models.shape import Frame, ShapeEncoder
from models.unet import ab_bin_centers

BINS = 15


def drawing(kind: str, color: tuple[int, int, int], size: int = 128,
            box: tuple[int, int, int, int] | None = None):
    """(page L, color RGB) of a ball or a tower drawn inside `box` (default: most of
    the page), black outline, filled with `color` in the colored picture."""
    x0, y0, x1, y1 = box or (8, 8, size - 8, size - 8)
    page = Image.new("L", (size, size), 255)
    pic = Image.new("RGB", (size, size), "white")
    for im, fill, line in ((page, None, 0), (pic, color, (0, 0, 0))):
        d = ImageDraw.Draw(im)
        if kind == "ball":
            d.ellipse((x0, y0, x1, y1), fill=fill, outline=line, width=3)
        else:
            w = x1 - x0
            d.rectangle((x0 + w // 3, y0, x1 - w // 3, y1), fill=fill, outline=line, width=3)
    return np.asarray(page, dtype=np.float32) * (100 / 255), np.asarray(pic)


def votes_for(memory: ColorMemory, page_l: np.ndarray, k: int = 1):
    regions = find_regions(page_l)
    samples = region_samples(regions, (64, 64))
    ids = torch.repeat_interleave(torch.arange(samples.counts.numel()), samples.counts)
    votes = memory.region_votes(recall_key(page_l), samples.index, ids,
                                samples.counts.numel(), samples.size, k=k)
    return regions, votes


def test_recall_finds_the_drawing_that_looks_alike():
    memory = build_memory([drawing("ball", (220, 30, 30)), drawing("tower", (30, 60, 220))],
                          BINS)
    idx, weights = memory.recall(recall_key(drawing("ball", (0, 0, 0))[0]), k=2)
    assert int(idx[0]) == 0 and float(weights[0]) > 0.9
    idx, _ = memory.recall(recall_key(drawing("tower", (0, 0, 0))[0]), k=2)
    assert int(idx[0]) == 1


def test_a_small_drawing_anywhere_on_the_sheet_lines_up_with_the_memory(tmp_path):
    """The ink frame: a small ball in a corner of a big sheet recalls the remembered
    canvas-filling ball, and its inside takes the remembered red, the paper none."""
    red, blue = (220, 30, 30), (30, 60, 220)
    memory = build_memory([drawing("ball", red), drawing("tower", blue)], BINS)
    page_l, _ = drawing("ball", (0, 0, 0), size=256, box=(150, 20, 230, 100))
    idx, _ = memory.recall(recall_key(page_l), k=2)
    assert int(idx[0]) == 0
    regions, votes = votes_for(memory, page_l)
    centers = ab_bin_centers(BINS) * 110
    ball = int(regions.labels[60, 190])
    a, b = centers[int(votes[ball].argmax())]
    assert a > 30 and abs(float(b)) < 60  # red: strong +a
    outside = int(regions.labels[200, 40])
    assert float(centers[int(votes[outside].argmax())].norm()) < 10  # paper stays gray
    assert torch.allclose(votes[ball].sum(), torch.tensor(1.0))


def test_storage_round_trip_with_an_encoder(tmp_path):
    torch.manual_seed(0)
    encoder = ShapeEncoder().eval()
    pairs = [drawing("ball", (220, 30, 30)), drawing("tower", (30, 60, 220))]
    memory = build_memory(pairs, BINS, encoder, temperature=0.07)
    memory.save(tmp_path / "m.safetensors")
    loaded = ColorMemory.load(tmp_path / "m.safetensors")
    assert loaded.encoder is not None and loaded.temperature == pytest.approx(0.07)
    assert torch.equal(loaded.cells, memory.cells)
    key = recall_key(pairs[1][0])
    # fp16 weights and int8 keys: close to what was saved.
    assert torch.allclose(loaded.keys, memory.keys, atol=2e-2)
    assert torch.allclose(loaded.key_of(key), memory.key_of(key), atol=2e-2)
    assert not torch.allclose(memory.keys[0], memory.keys[1], atol=1e-4)


def test_an_old_memory_file_is_refused_with_a_sentence(tmp_path):
    from safetensors.torch import save_file

    save_file({"descriptors": torch.zeros(2, SIDE * SIDE, dtype=torch.int8),
               "cells": torch.zeros(2, SIDE, SIDE, dtype=torch.uint8)},
              str(tmp_path / "old.safetensors"), metadata={"bins": "15"})
    with pytest.raises(MemoryFormatError, match="export the member again"):
        ColorMemory.load(tmp_path / "old.safetensors")


def test_memory_cells_match_the_training_grid():
    from models.colorspace import normalize_lab, rgb_to_lab
    from training.train import ab_cell_index

    _, rgb = drawing("tower", (30, 60, 220), size=SIDE)
    cells = color_cells(rgb, Frame(0.0, 0.0, float(SIDE)), BINS)
    rgb_t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255
    ab = normalize_lab(rgb_to_lab(rgb_t))[1:]
    assert torch.equal(cells, ab_cell_index(ab, BINS))


def _named(pairs, collection):
    return [(page, rgb, collection) for page, rgb in pairs]


def test_a_member_recalls_its_own_drawing_before_the_familys_shared_one():
    """Own pictures first: with the same ball in both memories (red in its own, blue in
    the family's), the member's ball is red; a tower only the family knows is green."""
    red, blue, green = (220, 30, 30), (30, 60, 220), (30, 170, 40)
    own = build_memory(_named([drawing("ball", red)], "mine"), BINS)
    shared = build_memory(_named([drawing("ball", blue), drawing("tower", green)],
                                 "theirs"), BINS)
    both = MemberMemory(own, shared)
    centers = ab_bin_centers(BINS) * 110
    ball_l, _ = drawing("ball", (0, 0, 0))
    maps, weights = both.recall(recall_key(ball_l), k=1)
    a, _ = centers[int(maps[0, 16, 16])]
    assert float(a) > 30 and float(weights[0]) == pytest.approx(1.0)  # red, its own
    tower_l, _ = drawing("tower", (0, 0, 0))
    maps, _ = both.recall(recall_key(tower_l), k=1)
    a, b = centers[int(maps[0, 16, 16])]
    assert float(a) < -20  # green: the family's tower
    maps, _ = MemberMemory(None, shared).recall(recall_key(ball_l), k=1)
    assert float(centers[int(maps[0, 16, 16])][1]) < -30  # alone, the family's blue ball


def test_shared_rows_of_the_members_own_collection_are_skipped(tmp_path):
    red, blue = (220, 30, 30), (30, 60, 220)
    own = build_memory(_named([drawing("tower", red)], "mine"), BINS)
    shared = build_memory(_named([drawing("ball", blue)], "mine")
                          + _named([drawing("tower", blue)], "theirs"), BINS)
    shared.save(tmp_path / "shared.safetensors")
    shared = ColorMemory.load(tmp_path / "shared.safetensors")
    assert shared.collections == ("mine", "theirs") and shared.origin.tolist() == [0, 1]
    ball_l, _ = drawing("ball", (0, 0, 0))
    maps, weights = MemberMemory(own, shared).recall(recall_key(ball_l), k=3)
    assert len(maps) == 2  # its own tower and the family's tower, not its ball again
    centers = ab_bin_centers(BINS) * 110
    cells = {int(m[16, 16]) for m in maps}
    assert all(float(centers[c][0]) > 30 or float(centers[c][1]) < -30 for c in cells)


def test_memories_keyed_by_different_encoders_are_not_recalled_together():
    torch.manual_seed(0)
    pairs = [drawing("ball", (220, 30, 30))]
    own = build_memory(pairs, BINS, ShapeEncoder().eval())
    shared = build_memory(pairs, BINS)  # ink layout keys
    both = MemberMemory(own, shared)
    assert both.shared is None and both.memories == [own]


def _recalled_ball(memory: ColorMemory):
    """(regions, RegionRecall) of a ball page recalled from `memory`."""
    page_l, _ = drawing("ball", (0, 0, 0))
    regions = find_regions(page_l)
    samples = region_samples(regions, (64, 64))
    ids = torch.repeat_interleave(torch.arange(samples.counts.numel()), samples.counts)
    recalled = MemberMemory(memory).region_recall(
        recall_key(page_l), samples.index, ids, samples.counts.numel(), samples.size)
    return regions, recalled


def test_memory_remembers_how_light_each_color_was(tmp_path):
    """A dark red ball and a light pink one have nearly one a/b; the memory keeps their
    lightness apart, through storage, and the decoder moves a region's L toward it."""
    from models.decoder import recalled_lightness

    dark, light = (110, 20, 20), (250, 200, 200)
    for color, lo, hi in ((dark, 15, 35), (light, 80, 95)):
        memory = build_memory([drawing("ball", color)], BINS)
        memory.save(tmp_path / "m.safetensors")
        loaded = ColorMemory.load(tmp_path / "m.safetensors")
        assert loaded.light is not None and torch.equal(loaded.light, memory.light)
        regions, recalled = _recalled_ball(loaded)
        ball = int(regions.labels[64, 64])
        cells = recalled.votes.argmax(dim=1)
        network_l = torch.full((regions.count + 1,), 60.0)
        moved = recalled_lightness(recalled, cells, ab_bin_centers(BINS), network_l, 1.0)
        assert lo < float(moved[ball]) < hi
        half = recalled_lightness(recalled, cells, ab_bin_centers(BINS), network_l, 0.5)
        assert float(half[ball]) == pytest.approx((60.0 + float(moved[ball])) / 2, abs=0.5)
        kept = recalled_lightness(recalled, cells, ab_bin_centers(BINS), network_l, 0.0)
        assert torch.equal(kept, network_l)


def test_a_memory_without_lightness_leaves_the_networks_l(tmp_path):
    from models.decoder import recalled_lightness

    memory = build_memory([drawing("ball", (110, 20, 20))], BINS)
    memory.light = None  # a file written before memories kept lightness
    memory.save(tmp_path / "m.safetensors")
    loaded = ColorMemory.load(tmp_path / "m.safetensors")
    assert loaded.light is None
    regions, recalled = _recalled_ball(loaded)
    network_l = torch.full((regions.count + 1,), 60.0)
    cells = recalled.votes.argmax(dim=1)
    assert torch.equal(recalled_lightness(recalled, cells, ab_bin_centers(BINS), network_l,
                                          1.0), network_l)


def test_gray_paper_keeps_the_networks_lightness():
    """Remembered grays are paper and outlines alike: the paper around a drawing whose
    chosen color is gray keeps the network's L, while a gray region inside may darken."""
    from models.decoder import recalled_lightness

    centers = ab_bin_centers(BINS)
    gray = int(centers.norm(dim=1).argmin())
    recall = RegionRecall(votes=torch.zeros(3, BINS * BINS), light=torch.zeros(3, BINS * BINS),
                          mass=torch.zeros(3, BINS * BINS))
    recall.votes[:, gray] = 1.0
    recall.mass[:, gray] = 1.0
    recall.light[:, gray] = 60.0  # half black outlines, half white paper
    cells = torch.full((3,), gray)
    network_l = torch.full((3,), 97.0)
    paper = torch.tensor([False, True, False])
    moved = recalled_lightness(recall, cells, centers, network_l, 1.0, paper=paper)
    assert float(moved[1]) == 97.0  # the paper
    assert float(moved[2]) == pytest.approx(60.0)  # a gray thing inside the drawing

"""Training loop: loss goes down, checkpoints resume exactly, pictures get written."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from training.train import StepBatches, TrainConfig, ab_cell_index, load_checkpoint, train

# Shape -> fill color: circles are red, squares blue, triangles yellow-green, so a
# network can learn the colors from the outlines.
_FILLS = {"circle": (220, 40, 40), "square": (40, 80, 220), "triangle": (150, 210, 30)}


def _draw(shape: str, box: tuple[int, int, int, int], size: int) -> tuple[Image.Image, Image.Image]:
    page = Image.new("L", (size, size), 255)
    color = Image.new("RGB", (size, size), (255, 255, 255))
    for img, fill, outline in ((page, None, 0), (color, _FILLS[shape], (0, 0, 0))):
        d = ImageDraw.Draw(img)
        x0, y0, x1, y1 = box
        if shape == "circle":
            d.ellipse(box, fill=fill, outline=outline, width=2)
        elif shape == "square":
            d.rectangle(box, fill=fill, outline=outline, width=2)
        else:
            d.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill, outline=outline,
                      width=2)
    return page, color


def make_toy_dataset(root: Path, n: int = 24, size: int = 48, seed: int = 0) -> Path:
    """A tiny dataset in the NOTES.md format: outlined shapes and their colored versions."""
    rng = np.random.default_rng(seed)
    rows = []
    shapes = list(_FILLS)
    for i in range(n):
        shape = shapes[i % len(shapes)]
        a, b = rng.integers(4, size // 3, size=2)
        c, d = rng.integers(2 * size // 3, size - 4, size=2)
        page, color = _draw(shape, (int(a), int(b), int(c), int(d)), size)
        buf = io.BytesIO()
        color.save(buf, format="PNG")
        digest = hashlib.sha256(buf.getvalue() + bytes([i])).hexdigest()
        folder = root / "pairs" / digest[:2]
        folder.mkdir(parents=True, exist_ok=True)
        page.save(folder / f"{digest}.page.png")
        color.save(folder / f"{digest}.color.png")
        split = "train" if i % 6 < 4 else ("val" if i % 6 == 4 else "test")
        rows.append({
            "id": digest, "page": f"pairs/{digest[:2]}/{digest}.page.png",
            "color": f"pairs/{digest[:2]}/{digest}.color.png", "collection": "toy",
            "source": f"toy:{i}", "license": "CC0-1.0", "split": split, "kind": "lineart",
            "width": size, "height": size,
        })
    with open(root / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    (root / "READY").write_text("toy\n")
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy"))


def _cfg(toy: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        dataset=str(toy), out_dir=str(out), net={"base_channels": 8, "depth": 2,
                                                 "max_channels": 16, "ab_bins": 7},
        steps=8, batch_size=4, lr=3e-3, warmup_steps=2, load_size=48, crop_size=32,
        snapshot_every=4, checkpoint_every=4, log_every=2, val_pages=2, snapshot_size=32,
        threads=1, progress=False, seed=3,
    )
    base.update(kw)
    return TrainConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["trainer"]["model"]


def test_a_few_steps_reduce_the_loss(toy: Path, tmp_path: Path) -> None:
    cfg = _cfg(toy, tmp_path / "run", steps=40, log_every=5, snapshot_every=20,
               checkpoint_every=40, warmup_steps=5)
    result = train(cfg)
    hist = load_checkpoint(result.checkpoint)["history"]
    assert result.finished and result.step == 40
    assert hist[-1]["total"] < 0.8 * hist[0]["total"], hist


def test_training_writes_snapshots_gif_and_curves(toy: Path, tmp_path: Path) -> None:
    result = train(_cfg(toy, tmp_path / "run"))
    # step 0 (newborn), 4 and 8
    assert [p.name for p in result.snapshots] == [
        "sheet_0000000.png", "sheet_0000004.png", "sheet_0000008.png"]
    gif = Image.open(result.growing_up)
    assert gif.n_frames == 3
    assert result.curves is not None and Image.open(result.curves).size[0] > 100
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert summary["step"] == 8


@pytest.mark.parametrize("arch,net", [
    ("unet", {"base_channels": 8, "depth": 2, "max_channels": 16, "ab_bins": 7}),
    ("unet", {"base_channels": 8, "depth": 2, "max_channels": 16}),
    ("pix2pix", {"base_channels": 8, "depth": 3, "max_channels": 16}),
])
def test_resume_is_exact(toy: Path, tmp_path: Path, arch: str, net: dict) -> None:
    kw = dict(architecture=arch, net=net, disc={"base_channels": 8, "n_layers": 2})
    straight = train(_cfg(toy, tmp_path / "straight", **kw))
    first = train(_cfg(toy, tmp_path / "split", stop_after=3, **kw))
    assert first.step == 3 and not first.finished
    second = train(_cfg(toy, tmp_path / "split", **kw))
    assert second.step == 8 and second.finished
    a, b = _weights(straight.checkpoint), _weights(second.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    ca, cb = load_checkpoint(straight.checkpoint), load_checkpoint(second.checkpoint)
    assert [h["total"] for h in ca["history"]] == [h["total"] for h in cb["history"]]


def test_resume_differs_from_a_fresh_start(toy: Path, tmp_path: Path) -> None:
    # Guard for the test above: training further really changes the weights.
    a = train(_cfg(toy, tmp_path / "a", steps=4))
    b = train(_cfg(toy, tmp_path / "b", steps=8))
    wa, wb = _weights(a.checkpoint), _weights(b.checkpoint)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if wa[k].is_floating_point())


def test_batches_are_a_function_of_the_step() -> None:
    whole = list(StepBatches(10, 3, 0, 6, seed=1))
    tail = list(StepBatches(10, 3, 4, 6, seed=1))
    assert whole[4:] == tail
    ranks = [list(StepBatches(10, 2, 0, 3, seed=1, rank=r, world=2)) for r in range(2)]
    single = list(StepBatches(10, 4, 0, 3, seed=1))
    for s in range(3):  # the two ranks together take the single process's global batch
        assert sorted(ranks[0][s] + ranks[1][s]) == sorted(single[s])


def test_ab_cells_cover_the_grid() -> None:
    ab = torch.tensor([[-1.0, -1.0], [0.99, 0.99], [0.0, -1.0]]).T.reshape(2, 3, 1)
    assert ab_cell_index(ab, 4).flatten().tolist() == [0, 15, 8]


def test_paper_white_has_a_cell_centered_on_gray() -> None:
    from models.unet import ab_bin_centers

    cell = ab_cell_index(torch.zeros(2, 1, 1), 15).item()
    assert ab_bin_centers(15)[cell].abs().max() < 1e-6


def test_even_ab_grids_are_refused(toy: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="odd"):
        train(_cfg(toy, tmp_path / "run", net={"base_channels": 8, "depth": 2, "ab_bins": 8}))

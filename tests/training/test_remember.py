"""`colorbot remember`: a member's memory rebuilt from a dataset, the manifest pointed at it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorbot.cli import main
from models.family import BUNDLED_FAMILY_DIR, Family
from models.memory import ColorMemory, recall_key
from training.datasets.manifest import DatasetWriter


def _toy_dataset(root: Path) -> Path:
    """Balls (red) and towers (blue), outlined in black; pages are the outlines."""
    with DatasetWriter(root, "toy", "CC0-1.0") as w:
        for i in range(16):
            color = Image.new("RGB", (64, 64), "white")
            page = Image.new("L", (64, 64), 255)
            for im, fill, line in ((color, (220, 20, 20) if i % 2 else (20, 40, 220), "black"),
                                   (page, None, 0)):
                d = ImageDraw.Draw(im)
                if i % 2:
                    d.ellipse((6 + i % 4, 6, 58, 58 - i % 3), fill=fill, outline=line, width=3)
                else:
                    d.rectangle((22, 4 + i % 3, 42, 60), fill=fill, outline=line, width=3)
            w.add(color, page, f"toy{i}")
    return root


def test_remember_rebuilds_the_memory_and_the_manifest(tmp_path, capsys):
    family_dir = tmp_path / "family"
    shutil.copytree(BUNDLED_FAMILY_DIR, family_dir,
                    ignore=shutil.ignore_patterns("*.gif", "*.md"))
    dataset = _toy_dataset(tmp_path / "toy")
    code = main(["remember", "clipart", "--dataset", str(dataset),
                 "--family", str(family_dir), "--shape", "none"])
    assert code == 0, capsys.readouterr().err
    member = Family.load(family_dir).get("clipart")
    memory = ColorMemory.load(family_dir / member.extra["memory"])
    train = memory.cells.shape[0]
    assert member.extra["memory_pages"] == train and 0 < train <= 16
    assert memory.encoder is None  # --shape none: keyed by ink layout
    page = np.full((64, 64), 100.0, np.float32)
    page[4:60, 22:25] = page[4:60, 40:43] = 0.0  # a tower's sides
    idx, _ = memory.recall(recall_key(page), k=1)
    # The nearest remembered picture is a blue tower: its middle is blue (a/b cell b < 0).
    bins = memory.bins
    cell = int(memory.cells[int(idx[0]), 16, 16])
    assert cell % bins < bins // 2


def test_remember_refuses_an_unknown_member_or_dataset(tmp_path, capsys):
    assert main(["remember", "nobody", "--dataset", str(tmp_path),
                 "--family", str(BUNDLED_FAMILY_DIR)]) == 2
    assert "no dataset" in capsys.readouterr().err
    dataset = _toy_dataset(tmp_path / "toy")
    assert main(["remember", "nobody", "--dataset", str(dataset),
                 "--family", str(BUNDLED_FAMILY_DIR)]) == 2
    assert "nobody" in capsys.readouterr().err


def test_remember_shared_builds_the_familys_memory_and_points_every_member_at_it(
        tmp_path, capsys):
    family_dir = tmp_path / "family"
    shutil.copytree(BUNDLED_FAMILY_DIR, family_dir,
                    ignore=shutil.ignore_patterns("*.gif", "*.md"))
    dataset = _toy_dataset(tmp_path / "toy")
    code = main(["remember-shared", "--dataset", str(dataset), "--family", str(family_dir),
                 "--shape", "none"])
    assert code == 0, capsys.readouterr().err
    family = Family.load(family_dir)
    names = {m.extra.get("shared_memory") for m in family.members}
    assert names == {"shared.memory.safetensors"}
    shared = ColorMemory.load(family_dir / "shared.memory.safetensors")
    assert shared.collections == ("toy",) and shared.origin is not None
    assert shared.origin.tolist() == [0] * shared.cells.shape[0] and shared.cells.shape[0] > 0
    assert main(["remember-shared", "--dataset", str(tmp_path / "nothing"),
                 "--family", str(family_dir)]) == 2
    assert "no dataset" in capsys.readouterr().err

"""Evaluation: the metrics and their baselines on a toy split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.family import Family
from tests.training.test_train import make_toy_dataset
from training.evaluate import (
    ab_only,
    colorfulness,
    evaluate,
    format_table,
    lines_kept_dark,
    mean_ciede2000,
)
from training.export import export_member
from training.train import TrainConfig, train


def test_colorfulness_of_gray_is_zero_and_of_color_is_not() -> None:
    gray = np.full((8, 8, 3), 77, np.uint8)
    assert colorfulness(gray) == 0.0
    half = gray.copy()
    half[:4] = (255, 0, 0)
    assert colorfulness(half) > 50


def test_lines_kept_dark() -> None:
    page_l = np.array([[10.0, 100.0], [20.0, 100.0]])
    assert lines_kept_dark(page_l, np.array([[5.0, 90.0], [80.0, 90.0]])) == 0.5
    assert lines_kept_dark(np.full((2, 2), 100.0), np.zeros((2, 2))) == 1.0


def test_ab_only_keeps_the_page_lightness() -> None:
    from skimage.color import rgb2lab

    red = rgb2lab(np.full((2, 2, 3), (200, 30, 30), np.uint8))
    out = ab_only(red, np.full((2, 2), 100.0))
    # On white paper (L = 100) no a/b is a visible color: the page stays (near) white.
    assert colorfulness(out) < 15 and out.min() > 200
    assert mean_ciede2000(red, red) == 0.0


@pytest.fixture(scope="module")
def toy_family(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    data = make_toy_dataset(root / "data", n=18)
    cfg = TrainConfig(dataset=str(data), out_dir=str(root / "run"),
                      net={"base_channels": 8, "depth": 2, "max_channels": 16, "ab_bins": 7},
                      steps=30, batch_size=4, lr=3e-3, warmup_steps=3, load_size=48,
                      crop_size=32, snapshot_every=15, checkpoint_every=30, val_pages=2,
                      snapshot_size=32, threads=1, progress=False)
    train(cfg)
    export_member(root / "run", root / "family", "toy", "🧸", "a toy member", work_size=48,
                  trained_on="toy shapes", license="CC0-1.0")
    export_member(root / "run", root / "family", "toy2", "🪀", "the same, hotter",
                  work_size=32, net_overrides={"ab_temperature": 1.0})
    return data, root / "family"


def test_evaluation_on_a_toy_split(toy_family: tuple[Path, Path]) -> None:
    data, family_dir = toy_family
    family = Family.load(family_dir)
    report = evaluate(family, ["toy", "toy2"], data, split="test")
    assert report["pages"] == 3
    rows = report["members"]["toy"]
    # The uncolored page: no color at all, and every line where it was.
    assert rows["uncolored"]["colorfulness"] == 0.0
    assert rows["uncolored"]["lines_kept_dark"] == 1.0
    assert rows["uncolored"]["ciede2000"] > 1  # the shapes are filled in the truth
    assert rows["A/B-only"]["lines_kept_dark"] == 1.0
    assert rows["true colors"]["colorfulness"] > 30 and rows["true colors"]["ciede2000"] is None
    assert rows["member"]["colorfulness"] > 0
    assert set(report["pairwise"]) == {"toy|toy2", "mean"}
    assert report["pairwise"]["toy|toy2"] > 0
    text = format_table(report)
    assert "uncolored" in text and "toy|toy2" in text
    json.dumps(report)  # the report is plain JSON


def test_evaluate_command_saves_json(toy_family: tuple[Path, Path], tmp_path: Path) -> None:
    from colorbot.cli import main

    data, family_dir = toy_family
    out = tmp_path / "report.json"
    rc = main(["evaluate", "toy", "--split", "test", "--dataset", str(data),
               "--family", str(family_dir), "--json", str(out), "--no-raw"])
    assert rc == 0
    report = json.loads(out.read_text())
    assert "network (no fill)" not in report["members"]["toy"]
    assert report["members"]["toy"]["uncolored"]["colorfulness"] == 0.0

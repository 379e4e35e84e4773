"""Export: a training run becomes a member the family registry loads and runs."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from models.family import Family
from tests.training.test_train import make_toy_dataset
from training.export import export_member
from training.train import TrainConfig, load_checkpoint, train


def test_export_writes_a_loadable_member(tmp_path: Path) -> None:
    data = make_toy_dataset(tmp_path / "data", n=12)
    cfg = TrainConfig(dataset=str(data), out_dir=str(tmp_path / "run"),
                      architecture="pix2pix",
                      net={"base_channels": 8, "depth": 3, "max_channels": 16},
                      disc={"base_channels": 8, "n_layers": 2}, steps=4, batch_size=2,
                      load_size=48, crop_size=32, snapshot_every=2, val_pages=2,
                      snapshot_size=32, threads=1, progress=False)
    train(cfg)
    fam = tmp_path / "family"
    member = export_member(tmp_path / "run", fam, "toy", "🧸", "a toy", work_size=64,
                           trained_on="toy shapes", license="CC0-1.0")
    assert member.version == 1
    same = export_member(tmp_path / "run", fam, "toy", "🧸", "a toy", work_size=64)
    assert same.version == 1  # same weights and config: the same member version
    again = export_member(tmp_path / "run", fam, "toy", "🧸", "a toy", work_size=64,
                          net_overrides={"dropout": 0.0})
    assert again.version == 2  # a changed member gets a new version, replacing the entry

    family = Family.load(fam)
    assert family.names == ["toy"]
    loaded = family.get("toy")
    assert loaded.emoji == "🧸" and loaded.architecture == "pix2pix"
    assert (fam / loaded.card).read_text().startswith("# 🧸 toy")
    assert (fam / loaded.growing_up).exists()
    manifest = json.loads((fam / "manifest.json").read_text())
    assert manifest["members"][0]["extra"]["training"]["steps"] == 4

    net = family.network("toy")
    page = torch.rand(1, 1, 40, 56) * 2 - 1
    out = net(page)
    assert out.shape == (1, 3, 40, 56)
    # fp16 on disk, same function as the trained weights up to fp16 rounding.
    trained = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["trainer"]["model"]
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, trained[k].to(v.dtype), atol=2e-3, rtol=2e-3)

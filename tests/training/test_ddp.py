"""DistributedDataParallel through torchrun: 2 CPU processes on gloo, tiny dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.test_train import make_toy_dataset
from training.train import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_torchrun_two_cpu_processes(tmp_path: Path) -> None:
    data = make_toy_dataset(tmp_path / "data", n=12)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "colorbot", "train", "--dataset", str(data), "--out", str(out),
        "--base-channels", "8", "--depth", "2", "--ab-bins", "7", "--steps", "4",
        "--batch-size", "2", "--crop", "32", "--load-size", "48", "--threads", "1",
        "--snapshot-every", "2", "--device", "cpu", "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2
    assert result["ranks_in_sync"] is True  # DDP kept both ranks' weights identical
    assert (out / "growing_up.gif").exists()

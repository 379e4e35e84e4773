"""What a training run is given and gives back, and what every architecture's steps use.

`training.train` runs the loop (data, checkpoints, snapshots, resume) and the
encoder-decoder's steps; `training.gan` has the pix2pix steps. Both import from here and
neither from the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import nn

# Optional callbacks (training/news.py posts them): each snapshot sheet, and the end.
SnapshotHook = Callable[[int, Path], None]  # (step, sheet PNG)
FinishHook = Callable[["TrainResult"], None]


@dataclass
class TrainConfig:
    dataset: str  # dataset folder: manifest.jsonl + pairs/ (NOTES.md format)
    out_dir: str  # run folder: checkpoint, snapshots, GIF, curves, log (outside the repo)
    architecture: str = "unet"  # "unet" (encoder-decoder) or "pix2pix" (GAN)
    net: dict[str, Any] = field(default_factory=dict)  # UNetConfig / GeneratorConfig fields
    kind: str = "lineart"  # lineart: predict L, a, b; photo: predict a, b (L is kept)
    steps: int = 2000  # total optimizer steps of the whole run (resume continues to it)
    batch_size: int = 16  # per process; the global batch is batch_size * world size
    lr: float = 2e-3  # peak learning rate (generator's for the GAN)
    warmup_steps: int = 100  # linear warm-up, then cosine decay to lr * lr_final
    lr_final: float = 0.05  # final learning rate as a fraction of lr
    weight_decay: float = 1e-4  # AdamW weight decay (encoder-decoder only)
    load_size: int = 144  # long side the pictures are cached at (the scale-1.0 size)
    crop_size: int = 112  # square training crops; smaller pictures are padded with paper
    scale_min: float = 0.8  # random rescale of the cached picture before cropping ...
    scale_max: float = 1.25  # ... scale changes are fine, rotations are not (see _augment)
    hflip: bool = True  # random horizontal flips (left/right carries no meaning)
    l_weight: float = 1.0  # weight of the L1 loss on lightness (network scale)
    ab_weight: float = 1.0  # weight of the a/b loss (L1, or cross-entropy for a bins head)
    rebalance: float = 0.5  # classification head: mix of empirical cell frequencies with
    # uniform (Zhang et al.'s lambda) for class-rebalancing weights; 1.0 = no rebalancing
    ce_pixel_fraction: float = 0.25  # share of pixels the cross-entropy is computed on
    # (a random subset: the full-resolution 256-way head is the costliest layer on CPU)
    gan_l1_weight: float = 100.0  # pix2pix: lambda of the L1 term
    gan_adv_weight: float = 1.0  # pix2pix: weight of the adversarial term
    disc: dict[str, Any] = field(default_factory=dict)  # DiscriminatorConfig fields
    disc_lr: float = 2e-4  # pix2pix: discriminator learning rate
    snapshot_every: int = 200  # steps between snapshot sheets of the validation pages
    checkpoint_every: int = 100  # steps between checkpoints
    keep_weights_every: int = 0  # also keep the weights of every N-th step under
    # out_dir/weights/ (fp16 safetensors; a held-out curve against training time); 0 = off
    log_every: int = 10  # steps between loss-history points
    val_pages: int = 8  # fixed validation pages in snapshot sheets and the GIF
    snapshot_size: int = 112  # long side of the pages in snapshot sheets
    seed: int = 0  # everything random (init, crops, dropout) follows from it
    threads: int = 0  # torch CPU threads; 0 = torch's default
    device: str = "auto"  # auto (cuda when present), cpu, cuda, cuda:1 ...
    amp: bool = True  # CUDA only: float16 autocast + GradScaler
    channels_last: bool = True  # CUDA only: NHWC memory format
    num_workers: int = 0  # DataLoader worker processes
    cache_images: bool = True  # keep the resized pictures in RAM (small at load_size)
    limit: int = 0  # use only the first N training pairs (0 = all); for tests
    collage: float = 0.0  # share of training views that are collages of 2-4 pictures on
    # one page (an emoji fills its canvas alone; a coloring page has several things)
    init_weights: str = ""  # start from these weights (a member's .safetensors or a run's
    # checkpoint.pt): how a member grows from the shared base
    max_minutes: float = 0.0  # stop (checkpointed) after this much wall time; 0 = none
    stop_after: int = 0  # stop (checkpointed) after this many steps in this call; 0 = none
    resume: bool = True  # continue from out_dir/checkpoint.pt when it exists
    progress: bool = True  # tqdm progress bar (rank 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def out_channels(self) -> int:
        return 3 if self.kind == "lineart" else 2


@dataclass
class TrainResult:
    out_dir: Path  # the run folder
    checkpoint: Path  # last checkpoint
    step: int  # steps done in total
    finished: bool  # True when step == cfg.steps
    losses: dict[str, float]  # mean of each loss part over the last log window
    wall_seconds: float  # training wall time in total, over all resumes
    steps_per_second: float  # in this call
    world_size: int = 1
    ranks_in_sync: bool = True  # DDP: every rank ended with identical weights
    snapshots: list[Path] = field(default_factory=list)
    growing_up: Path | None = None  # the animated GIF
    curves: Path | None = None  # loss curves PNG


def lr_at(step: int, cfg: TrainConfig, peak: float) -> float:
    """Linear warm-up, then cosine decay to peak * lr_final; a pure function of the step."""
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    return peak * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@dataclass
class Dist:
    """Where this process stands in a distributed run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

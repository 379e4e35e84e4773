"""Training a family member: `train(cfg) -> TrainResult`, for the U-Net and pix2pix.

The loop is a function so that the CLI (`colorbot train`) and retraining from votes
call the same thing. What it does, in order:

- reads a dataset folder (`manifest.jsonl` + `pairs/`, the NOTES.md format), caches
  the pictures small in memory and draws augmented crops;
- trains the encoder-decoder (L1 in LAB; with a classification a/b head, L1 on L plus
  class-rebalanced cross-entropy on a/b cells) or the GAN (`training/gan.py`);
- writes checkpoints that resume exactly (model, optimizers, grad scalers, config,
  step, RNG state, loss history), a snapshot sheet of fixed validation pages every
  `snapshot_every` steps, and at the end the "growing up" GIF and the loss curves;
- runs under `torchrun` with DistributedDataParallel (NCCL on GPUs, gloo on CPU).

Exact resume is by construction: the crops of step `s` are a pure function of
`(seed, s)` (see `StepBatches`), the learning rate is a pure function of the step, and
the torch RNG state (dropout) is saved. N steps straight and N/2 + resume + N/2 give
the same weights.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from models import options
from models.colorspace import keep_lines, lab_to_rgb, normalize_lab, rgb_to_lab
from models.pix2pix import GeneratorConfig, Pix2PixGenerator
from models.unet import UNet, UNetConfig
from training.config import (
    Dist,
    FinishHook,
    SnapshotHook,
    TrainConfig,
    TrainResult,
    lr_at,
    unwrap,
)
from training.datasets import manifest
from training.datasets.manifest import MANIFEST
from training.gan import GanSteps

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOT_DIR = "snapshots"


# --------------------------------------------------------------------------- data


def dataset_folders(dataset: str | Path) -> list[Path]:
    """The folders of a `dataset` setting: one folder, or several joined by commas."""
    return [Path(p.strip()) for p in str(dataset).split(",") if p.strip()]


def read_manifest(dataset: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """The dataset's pairs as dicts (optionally one split), sorted by id so order is
    stable; read by the one manifest reader, `training.datasets.manifest.read_manifest`.

    `dataset` may name several folders joined by commas (the shared base trains on the
    union of collections); each row then carries its folder in `_root`.
    """
    folders = dataset_folders(dataset)
    rows = []
    for folder in folders:
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"no dataset at {folder} (no {MANIFEST})")
        for record in manifest.read_manifest(folder):
            if split is None or record.split == split:
                row = asdict(record)
                rows.append({**row, "_root": str(folder)} if len(folders) > 1 else row)
    return sorted(rows, key=lambda r: r["id"])


def _resize_long_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img if new == img.size else img.resize(new, Image.Resampling.BILINEAR)


def load_pair(dataset: Path, row: dict[str, Any],
              size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(page (H, W) uint8, color (H, W, 3) uint8), long side resized to `size` if given."""
    root = Path(row.get("_root", dataset))
    page = Image.open(root / row["page"]).convert("L")
    color = Image.open(root / row["color"]).convert("RGB")
    if size:
        page, color = _resize_long_side(page, size), _resize_long_side(color, size)
    return np.asarray(page).copy(), np.asarray(color).copy()


class PairCrops(Dataset):
    """Training pairs as augmented crops; items are addressed by `(index, crop_seed)`.

    Returns `(page, color)`: page (1, S, S) and color (3, S, S), uint8 tensors, so the
    DataLoader moves bytes and the LAB conversion runs batched on the device.
    """

    def __init__(self, dataset: str | Path, rows: list[dict[str, Any]], cfg: TrainConfig) -> None:
        self.root = Path(dataset)
        self.rows = rows
        self.cfg = cfg
        self._cache: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cfg.cache_images:
            self._cache = [load_pair(self.root, r, cfg.load_size) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def _pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None:
            return self._cache[index]
        return load_pair(self.root, self.rows[index], self.cfg.load_size)

    def __getitem__(self, item: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, crop_seed = item
        gen = torch.Generator().manual_seed(crop_seed)
        if self.cfg.collage > 0 and float(torch.rand(1, generator=gen)) < self.cfg.collage:
            both = self._collage(index, gen)
        else:
            both = self._both(index)
        both = _augment(both, self.cfg, gen)
        return both[:1], both[1:]

    def _both(self, index: int) -> torch.Tensor:
        page, color = self._pair(index)
        return torch.cat(
            (torch.from_numpy(page)[None], torch.from_numpy(color).permute(2, 0, 1)), dim=0
        )  # (4, H, W) uint8: page L + color RGB, cropped together

    def _collage(self, index: int, gen: torch.Generator) -> torch.Tensor:
        """2-4 pictures, each shrunk to 38-55 % and placed in its own quarter of a white
        page (jittered), so they overlap little.

        A picture covers what it draws (its dark lines or non-white colors) and lets
        the paper or earlier pictures show elsewhere, like stickers on one page.
        """
        first = self._both(index)
        h, w = first.shape[-2:]
        canvas = torch.full_like(first, 255)
        count = 2 + int(torch.randint(0, 3, (1,), generator=gen))
        picks = [index] + torch.randint(0, len(self.rows), (count - 1,), generator=gen).tolist()
        quarters = torch.randperm(4, generator=gen).tolist()
        for pick, quarter in zip(picks, quarters, strict=False):
            both = first if pick == index else self._both(pick)
            scale = 0.38 + 0.17 * float(torch.rand(1, generator=gen))
            nh, nw = max(8, round(h * scale)), max(8, round(w * scale))
            small = F.interpolate(both[None].float(), size=(nh, nw), mode="bilinear",
                                  align_corners=False, antialias=True)[0]
            small = small.round().clamp(0, 255).to(torch.uint8)
            jitter = torch.rand(2, generator=gen).tolist()
            y = min(h - nh, (quarter // 2) * (h // 2) + int(jitter[0] * max(0, h // 2 - nh)))
            x = min(w - nw, (quarter % 2) * (w // 2) + int(jitter[1] * max(0, w // 2 - nw)))
            drawn = (small[:1] < 200) | (small[1:] < 235).any(0, keepdim=True)  # (1, nh, nw)
            region = canvas[:, y : y + nh, x : x + nw]
            canvas[:, y : y + nh, x : x + nw] = torch.where(drawn, small, region)
        return canvas


def _augment(both: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random scale, random crop (white paper padding), random horizontal flip.

    No rotations: a horizontal line means something else than a vertical one (the sky
    is above the horizon, a face's eyes above its mouth), and a colorizer that saw
    pictures upside down learns to hedge between "sky" and "grass" colors.
    """
    u = torch.rand(4, generator=gen).tolist()
    scale = cfg.scale_min + (cfg.scale_max - cfg.scale_min) * u[0]
    h, w = both.shape[-2:]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        both = F.interpolate(both[None].float(), size=(nh, nw), mode="bilinear",
                             align_corners=False, antialias=scale < 1)[0]
        both = both.round().clamp(0, 255).to(torch.uint8)
    s = cfg.crop_size
    pad_h, pad_w = max(0, s - nh), max(0, s - nw)
    if pad_h or pad_w:  # paper around the picture: white page, white color
        top, left = pad_h // 2, pad_w // 2
        both = F.pad(both, (left, pad_w - left, top, pad_h - top), value=255)
    h, w = both.shape[-2:]
    y = int(u[1] * (h - s + 1))
    x = int(u[2] * (w - s + 1))
    both = both[:, y : y + s, x : x + s]
    if cfg.hflip and u[3] < 0.5:
        both = both.flip(-1)
    return both.contiguous()


class StepBatches(Sampler[list[tuple[int, int]]]):
    """Batches for steps `start..end-1`; step s's items are a pure function of (seed, s).

    The training stream is an endless sequence of epochs, each a permutation seeded by
    (seed, epoch). The global batch of step s is stream positions
    [s * B * world, (s + 1) * B * world); rank r takes every world-th of them. Each item
    gets its own crop seed from its stream position, so a resumed run, or a run with
    DataLoader workers, sees exactly the crops an uninterrupted run would.
    """

    def __init__(self, n: int, batch_size: int, start: int, end: int, seed: int,
                 rank: int = 0, world: int = 1) -> None:
        self.n, self.batch_size, self.start, self.end = n, batch_size, start, end
        self.seed, self.rank, self.world = seed, rank, world
        self._perm_epoch = -1
        self._perm: list[int] = []

    def _index(self, position: int) -> int:
        epoch, i = divmod(position, self.n)
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.n, generator=gen).tolist()
            self._perm_epoch = epoch
        return self._perm[i]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.world
        for step in range(self.start, self.end):
            first = step * global_batch + self.rank
            positions = range(first, first + global_batch, self.world)
            yield [(self._index(p), (self.seed * 7_919 + p) % (2**63)) for p in positions]

    def __len__(self) -> int:
        return max(0, self.end - self.start)


_GRAY_L: dict[str, torch.Tensor] = {}


def _gray_to_l(device: torch.device) -> torch.Tensor:
    key = str(device)
    if key not in _GRAY_L:
        gray = torch.arange(256, dtype=torch.float32).div(255.0).view(1, 1, 256).expand(3, 1, 256)
        _GRAY_L[key] = rgb_to_lab(gray)[0, 0].to(device)  # (256,)
    return _GRAY_L[key]


def batch_to_lab(page: torch.Tensor, color: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 page (B, 1, H, W) and color (B, 3, H, W) -> page L and color LAB, network scale."""
    # A gray level g has the LAB lightness of sRGB (g, g, g): a 256-entry lookup.
    page_l = _gray_to_l(page.device)[page.long()]  # (B, 1, H, W) in [0, 100]
    target = normalize_lab(rgb_to_lab(color.float() / 255.0))  # (B, 3, H, W)
    return page_l / 50.0 - 1.0, target  # (B, 1, H, W) in [-1, 1], (B, 3, H, W)


# --------------------------------------------------------------------------- losses


def ab_cell_index(ab: torch.Tensor, bins: int) -> torch.Tensor:
    """a/b in network scale (..., 2, H, W) -> cell index (..., H, W), row-major over (a, b)."""
    cell = ((ab.clamp(-1.0, 1.0 - 1e-6) + 1.0) * (bins / 2.0)).long()
    return cell[..., 0, :, :] * bins + cell[..., 1, :, :]


def rebalancing_weights(dataset: PairCrops, bins: int, lam: float, samples: int = 400,
                        seed: int = 0) -> torch.Tensor:
    """Zhang et al.'s class-rebalancing weights over the a/b cells.

    w ∝ 1 / ((1 - lam) * p + lam / Q) with p the (smoothed) cell frequencies of the
    training colors, normalized so that E_p[w] = 1: rare, saturated colors weigh more
    than the paper-white and gray that dominate every page, which is what keeps the
    predictions from collapsing to brown.
    """
    q = bins * bins
    p = ab_cell_frequencies(dataset, bins, samples, seed).double()
    w = 1.0 / ((1.0 - lam) * p + lam / q)
    w = w / (p * w).sum()
    return w.float()


def ab_cell_frequencies(dataset: PairCrops, bins: int, samples: int = 400,
                        seed: int = 0) -> torch.Tensor:
    """How often each a/b cell occurs in the training colors (smoothed, sums to 1).

    The rebalancing weights come from it, and the region decoder's logit adjustment
    uses it as the member's prior (exported into the manifest as `ab_prior`).
    """
    q = bins * bins
    counts = torch.zeros(q, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(dataset), generator=gen)[:samples].tolist()
    for i in picks:
        _, color = dataset._pair(i)
        rgb = torch.from_numpy(color).permute(2, 0, 1).float() / 255.0
        ab = normalize_lab(rgb_to_lab(rgb))[1:]
        counts += torch.bincount(ab_cell_index(ab, bins).flatten(), minlength=q).double()
    p = counts / counts.sum().clamp_min(1.0)
    # Smooth over neighbouring cells (Zhang: Gaussian, sigma 5 ab units ~ half a cell).
    grid = p.view(1, 1, bins, bins).float()
    kernel = torch.tensor([0.25, 0.5, 0.25])
    grid = F.conv2d(grid, (kernel[:, None] * kernel[None, :]).view(1, 1, 3, 3), padding=1)
    return (grid.flatten() / grid.sum()).float()


class EncoderDecoderObjective(nn.Module):
    """The U-Net and its training loss in one module, so DDP wraps a plain forward.

    Regression head: L1 on every predicted channel (L, a, b in network scale).
    Classification head (ab_bins > 0): L1 on L plus cross-entropy over a/b cells,
    weighted by `class_weights`, on a random `pixel_fraction` of the pixels.
    """

    def __init__(self, net: UNet, cfg: TrainConfig, class_weights: torch.Tensor | None) -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, page_l: torch.Tensor, target: torch.Tensor,
                pixel_gen: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        # page_l: (B, 1, H, W); target: (B, 3, H, W) L, a, b in network scale.
        cfg, net = self.cfg, self.net
        target_ab = target[:, 1:]
        parts: dict[str, torch.Tensor] = {}
        if not net.classifies_ab:
            pred = net(page_l)  # (B, C, H, W)
            want = target if pred.shape[1] == 3 else target_ab
            if pred.shape[1] == 3:
                parts["l1_L"] = (pred[:, :1].float() - want[:, :1]).abs().mean() * cfg.l_weight
            parts["l1_ab"] = (pred[:, -2:].float() - target_ab).abs().mean() * cfg.ab_weight
            return parts
        feats = net.features(page_l)  # (B, C0, H, W)
        pred_l, _ = (net.l_head(feats), None) if net.l_head is not None else (None, None)
        if pred_l is not None:
            pred_l = torch.tanh(pred_l)
            parts["l1_L"] = (pred_l.float() - target[:, :1]).abs().mean() * cfg.l_weight
        # Cross-entropy on a random subset of pixels: gather their features and apply
        # the 1x1 head as a linear layer (the same weights `net.heads` uses).
        b, c0, h, w = feats.shape
        flat = feats.permute(0, 2, 3, 1).reshape(-1, c0)  # (B*H*W, C0)
        cells = ab_cell_index(target_ab, net.cfg.ab_bins).reshape(-1)  # (B*H*W,)
        k = max(1, int(flat.shape[0] * cfg.ce_pixel_fraction))
        if k < flat.shape[0]:
            pick = torch.randperm(flat.shape[0], generator=pixel_gen)[:k].to(flat.device)
            flat, cells = flat[pick], cells[pick]
        head = net.ab_head
        logits = F.linear(flat, head.weight.view(head.out_channels, c0), head.bias)  # (K, Q)
        ce = F.cross_entropy(logits.float(), cells, reduction="none")
        if self.class_weights is not None:
            ce = ce * self.class_weights[cells]
        parts["ce_ab"] = ce.mean() * cfg.ab_weight
        return parts


# --------------------------------------------------------------------------- helpers


def build_network(cfg: TrainConfig) -> nn.Module:
    net_cfg = dict(cfg.net)
    net_cfg["out_channels"] = cfg.out_channels
    if cfg.architecture == "unet":
        bins = net_cfg.get("ab_bins", 0)
        if bins and bins % 2 == 0:
            # With an even grid no cell is centered on a = b = 0: paper white would be
            # learned as the cell at (+half a cell, +half a cell), a peach tint.
            raise ValueError(f"ab_bins must be odd so that gray has its own cell, not {bins}")
        return UNet(UNetConfig(**net_cfg))
    if cfg.architecture == "pix2pix":
        return Pix2PixGenerator(GeneratorConfig(**net_cfg))
    raise ValueError(f"unknown architecture {cfg.architecture!r} (unet, pix2pix)")


def load_initial_weights(net: nn.Module, path: str | Path) -> None:
    """Start `net` from a member's weights (.safetensors) or a run's checkpoint."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_checkpoint(path)["trainer"]["model"]
    own = net.state_dict()
    missing = [k for k, v in own.items() if v.is_floating_point() and k not in state]
    if missing:
        raise ValueError(f"{path}: no weights for {', '.join(missing[:3])} ...")
    own.update({k: v.to(own[k].dtype) for k, v in state.items() if k in own})
    net.load_state_dict(own)


def resolve_device(name: str) -> torch.device:
    """The device `name` names ("auto": a GPU when torch sees one; models.options)."""
    return torch.device(options.resolve_device(name))


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save leaves the previous checkpoint


def load_checkpoint(path: Path) -> dict[str, Any]:
    # Our own files: they hold numpy RNG state and the config dict, not only tensors.
    return torch.load(path, map_location="cpu", weights_only=False)


def _init_distributed(device_name: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank)


# --------------------------------------------------------------------------- pictures


def predict_lab(net: nn.Module, page_l: torch.Tensor, kind: str) -> torch.Tensor:
    """Network output as LAB (B, 3, H, W) for display: line art L = min(page L, predicted L)."""
    out = net(page_l).float()
    page = (page_l.float() + 1.0) * 50.0
    if out.shape[1] == 2:  # photo member: a/b only, the page's L kept
        return torch.cat((page, out * 110.0), dim=1)
    pred_l = (out[:, :1] + 1.0) * 50.0
    return torch.cat((keep_lines(page, pred_l), out[:, 1:] * 110.0), dim=1)


def _to_image(rgb: torch.Tensor) -> Image.Image:
    arr = (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr)


def _paste_grid(rows: list[list[Image.Image]], cell: int, label: str = "") -> Image.Image:
    top = 16 if label else 0
    sheet = Image.new("RGB", (cell * max(len(r) for r in rows), top + cell * len(rows)), "white")
    for y, row in enumerate(rows):
        for x, img in enumerate(row):
            ox = x * cell + (cell - img.width) // 2
            oy = top + y * cell + (cell - img.height) // 2
            sheet.paste(img, (ox, oy))
    if label:
        ImageDraw.Draw(sheet).text((4, 2), label, fill=(0, 0, 0))
    return sheet


class ValidationPages:
    """Fixed validation pages (the first of the val split by id) for snapshots."""

    def __init__(self, dataset: str | Path, count: int, size: int) -> None:
        rows = read_manifest(dataset, "val")[:count] or read_manifest(dataset, "train")[:count]
        self.size = size
        self.pages: list[torch.Tensor] = []  # (1, 1, h, w) network scale
        self.truth: list[Image.Image] = []
        for row in rows:
            page, color = load_pair(dataset_folders(dataset)[0], row, size)
            page_t, _ = batch_to_lab(torch.from_numpy(page)[None, None],
                                     torch.from_numpy(color).permute(2, 0, 1)[None])
            self.pages.append(page_t)
            self.truth.append(Image.fromarray(color))

    @torch.no_grad()
    def colorings(self, net: nn.Module, kind: str, device: torch.device) -> list[Image.Image]:
        was_training = net.training
        net.eval()
        out = []
        for page in self.pages:
            lab = predict_lab(net, page.to(device), kind)[0].cpu()
            out.append(_to_image(lab_to_rgb(lab)))
        net.train(was_training)
        return out

    def sheet(self, colorings: list[Image.Image], label: str) -> Image.Image:
        pages = [_to_image(((p[0] + 1) / 2).expand(3, -1, -1)) for p in self.pages]
        return _paste_grid([pages, colorings, self.truth], self.size, label)


def growing_up_gif(rows: list[tuple[int, Path]], path: Path, max_bytes: int = 1_400_000,
                   frame_ms: int = 600) -> Path | None:
    """Animate the snapshot rows (step, PNG of colorings) into a GIF under max_bytes."""
    if not rows:
        return None
    frames = []
    for step, png in rows:
        img = Image.open(png).convert("RGB")
        canvas = Image.new("RGB", (img.width, img.height + 14), "white")
        canvas.paste(img, (0, 14))
        ImageDraw.Draw(canvas).text((4, 1), f"step {step}", fill=(0, 0, 0))
        frames.append(canvas)
    # Shrink (fewer frames, then smaller) until the file fits.
    scale = 1.0
    while True:
        use = frames
        if len(use) > 24:
            keep = np.linspace(0, len(use) - 1, 24).round().astype(int)
            use = [use[i] for i in keep]
        if scale < 1.0:
            use = [f.resize((max(1, int(f.width * scale)), max(1, int(f.height * scale))))
                   for f in use]
        pal = [f.quantize(colors=128, method=Image.Quantize.MEDIANCUT) for f in use]
        durations = [frame_ms] * (len(pal) - 1) + [frame_ms * 4]
        pal[0].save(path, save_all=True, append_images=pal[1:], duration=durations, loop=0,
                    optimize=True)
        if path.stat().st_size <= max_bytes or scale < 0.2:
            return path
        scale *= 0.8


def loss_curves_png(history: list[dict[str, float]], path: Path, title: str = "") -> Path | None:
    """Loss curves drawn with Pillow (no matplotlib here): one panel per loss part."""
    if len(history) < 2:
        return None
    keys = [k for k in history[0] if k != "step"]
    w, h, pad = 640, 180, 40
    img = Image.new("RGB", (w, h * len(keys) + 20), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad, 4), title, fill=(0, 0, 0))
    steps = [r["step"] for r in history]
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    for i, key in enumerate(keys):
        vals = [r.get(key, float("nan")) for r in history]
        good = [v for v in vals if math.isfinite(v)]
        if not good:
            continue
        lo, hi = min(good), max(good)
        hi = hi if hi > lo else lo + 1e-6
        y0 = 20 + i * h
        box = (pad, y0 + 10, w - 10, y0 + h - 20)
        draw.rectangle(box, outline=(160, 160, 160))
        draw.text((pad + 4, y0 + 12), f"{key}  last {good[-1]:.4f}", fill=colors[i % 5])
        draw.text((2, box[1]), f"{hi:.3g}", fill=(90, 90, 90))
        draw.text((2, box[3] - 10), f"{lo:.3g}", fill=(90, 90, 90))
        x_span = max(1, steps[-1] - steps[0])
        pts = [
            (box[0] + (s - steps[0]) / x_span * (box[2] - box[0]),
             box[3] - (v - lo) / (hi - lo) * (box[3] - box[1]))
            for s, v in zip(steps, vals, strict=True) if math.isfinite(v)
        ]
        draw.line(pts, fill=colors[i % 5], width=2)
        draw.text((box[2] - 90, box[3] + 2), f"step {steps[-1]}", fill=(90, 90, 90))
    img.save(path)
    return path


# --------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig, on_snapshot: SnapshotHook | None = None,
          on_finish: FinishHook | None = None) -> TrainResult:
    """Train (or resume) a member; see the module docstring. Returns where things are.

    `on_snapshot(step, sheet)` and `on_finish(result)` are called on the main rank;
    an exception in them is logged and never stops training."""
    if cfg.architecture == "pix2pix":
        return _run(cfg, GanSteps, on_snapshot, on_finish)
    return _run(cfg, _EncoderDecoderSteps, on_snapshot, on_finish)


def _tell(hook: Callable[..., None] | None, *args: Any) -> None:
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:  # news about training must never stop it
        log.warning("training callback failed", exc_info=True)


class _EncoderDecoderSteps:
    """The encoder-decoder's part of the loop: model, optimizer, one step, state."""

    def __init__(self, cfg: TrainConfig, net: nn.Module, data: PairCrops, device: torch.device,
                 dist: Dist) -> None:
        self.cfg = cfg
        weights = None
        if isinstance(net, UNet) and net.classifies_ab and cfg.rebalance < 1.0:
            weights = rebalancing_weights(data, net.cfg.ab_bins, cfg.rebalance, seed=cfg.seed)
        self.objective: nn.Module = EncoderDecoderObjective(net, cfg, weights).to(device)
        if dist.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.objective = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids)
        self.optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr,
                                           weight_decay=cfg.weight_decay)
        self.use_amp = cfg.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.device = device
        # The pixel subset for the cross-entropy comes from its own generator, seeded per
        # step, so it does not depend on anything else that consumed random numbers.
        self.pixel_gen = torch.Generator(device="cpu")

    def step(self, step: int, page_l: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, self.cfg, self.cfg.lr)
        self.pixel_gen.manual_seed(self.cfg.seed * 31 + step)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16,
                            enabled=self.use_amp):
            parts = self.objective(page_l, target, self.pixel_gen)
        loss = sum(parts.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {k: float(v.detach()) for k, v in parts.items()}

    def state_dict(self) -> dict[str, Any]:
        obj = unwrap(self.objective)
        return {
            "model": obj.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "class_weights": obj.class_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        obj = unwrap(self.objective)
        obj.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if state.get("class_weights") is not None:
            obj.class_weights = state["class_weights"].to(self.device)

    @property
    def net(self) -> nn.Module:
        return unwrap(self.objective).net


def _run(cfg: TrainConfig, steps_cls: type, on_snapshot: SnapshotHook | None = None,
         on_finish: FinishHook | None = None) -> TrainResult:
    """The shared loop: data, resume, steps, checkpoints, snapshots, the end."""
    from tqdm import tqdm

    dist = _init_distributed(cfg.device)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    snap_dir = out / SNAPSHOT_DIR
    if dist.main:
        snap_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_NAME

    seed_everything(cfg.seed)  # same initial weights on every rank
    rows = read_manifest(cfg.dataset, "train")
    if cfg.limit:
        rows = rows[: cfg.limit]
    if not rows:
        raise ValueError(f"{cfg.dataset}: no training pairs")
    t0 = time.perf_counter()
    data = PairCrops(cfg.dataset, rows, cfg)
    if dist.main:
        log.info("loaded %d training pairs in %.1f s", len(rows), time.perf_counter() - t0)
    net = build_network(cfg).to(device)
    if device.type == "cuda" and cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if cfg.init_weights:
        load_initial_weights(net, cfg.init_weights)
    steps = steps_cls(cfg, net, data, device, dist)

    start, history, wall_before = 0, [], 0.0
    window: dict[str, list[float]] = {}
    if cfg.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        steps.load_state_dict(ckpt["trainer"])
        start, history, window = ckpt["step"], ckpt["history"], ckpt.get("window", {})
        wall_before = ckpt.get("wall_seconds", 0.0)
        set_rng_state(ckpt["rng"])
        if dist.main:
            log.info("resumed %s at step %d", ckpt_path, start)
    end = cfg.steps if not cfg.stop_after else min(cfg.steps, start + cfg.stop_after)

    val = ValidationPages(cfg.dataset, cfg.val_pages, cfg.snapshot_size) if dist.main else None
    loader = DataLoader(
        data,
        batch_sampler=StepBatches(len(data), cfg.batch_size, start, end, cfg.seed,
                                  dist.rank, dist.world),
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        # Its own generator: creating the iterator draws a base seed, which must not
        # come from (and shift) the global RNG that dropout uses, or resume drifts.
        generator=torch.Generator().manual_seed(cfg.seed),
    )

    def snapshot(step: int) -> None:
        assert val is not None
        colorings = val.colorings(steps.net, cfg.kind, device)
        val.sheet(colorings, f"step {step}").save(snap_dir / f"sheet_{step:07d}.png")
        _paste_grid([colorings], val.size).save(snap_dir / f"row_{step:07d}.png")
        _tell(on_snapshot, step, snap_dir / f"sheet_{step:07d}.png")

    def checkpoint(step: int, wall: float) -> None:
        save_checkpoint(ckpt_path, {
            "trainer": steps.state_dict(),
            "config": cfg.to_dict(),
            "step": step,
            "rng": rng_state(),
            "history": history,
            "window": window,  # loss parts since the last history point
            "wall_seconds": wall,
            "world_size": dist.world,
        })

    def keep_weights(step: int, wall: float) -> None:
        from safetensors.torch import save_file

        folder = out / "weights"
        folder.mkdir(exist_ok=True)
        state = {k: v.detach().to("cpu", torch.float16).contiguous()
                 for k, v in steps.net.state_dict().items() if v.is_floating_point()}
        save_file(state, str(folder / f"step_{step:07d}.safetensors"),
                  metadata={"step": str(step), "wall_seconds": f"{wall:.1f}"})

    if dist.main and start == 0 and not (snap_dir / f"row_{0:07d}.png").exists():
        snapshot(0)  # the newborn: random colors
    bar = tqdm(total=cfg.steps, initial=start, disable=not (cfg.progress and dist.main),
               dynamic_ncols=True, desc=Path(cfg.out_dir).name, mininterval=2.0)
    t_start = time.perf_counter()
    step = start
    stopped_early = False
    for page, color in loader:
        page = page.to(device, non_blocking=True)
        color = color.to(device, non_blocking=True)
        page_l, target = batch_to_lab(page, color)
        if device.type == "cuda" and cfg.channels_last:
            page_l = page_l.contiguous(memory_format=torch.channels_last)
            target = target.contiguous(memory_format=torch.channels_last)
        parts = steps.step(step, page_l, target)
        step += 1
        for k, v in parts.items():
            window.setdefault(k, []).append(v)
        if step % cfg.log_every == 0 or step == cfg.steps:
            point = {"step": step, **{k: float(np.mean(v)) for k, v in window.items()}}
            point["total"] = float(sum(point[k] for k in window))
            history.append(point)
            window = {}
            bar.set_postfix(loss=f"{point['total']:.4f}", lr=f"{lr_at(step, cfg, cfg.lr):.1e}")
        bar.update(1)
        elapsed = time.perf_counter() - t_start
        over_time = cfg.max_minutes > 0 and (wall_before + elapsed) > cfg.max_minutes * 60
        if dist.main:
            if step % cfg.snapshot_every == 0 or step == cfg.steps:
                snapshot(step)
            if step % cfg.checkpoint_every == 0 or step == end or over_time:
                checkpoint(step, wall_before + elapsed)
            if cfg.keep_weights_every and step % cfg.keep_weights_every == 0:
                keep_weights(step, wall_before + elapsed)
        if over_time:
            stopped_early = True
            break
    bar.close()
    elapsed = time.perf_counter() - t_start
    if dist.main and (stopped_early or step == end):
        checkpoint(step, wall_before + elapsed)

    in_sync = True
    if dist.world > 1:
        import torch.distributed as tdist

        flat = torch.cat([p.detach().float().flatten() for p in steps.net.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(dist.world)]
        tdist.all_gather(gathered, flat)
        in_sync = all(torch.equal(gathered[0], g) for g in gathered[1:])

    finished = step >= cfg.steps
    result = TrainResult(
        out_dir=out, checkpoint=ckpt_path, step=step, finished=finished,
        losses={k: v for k, v in (history[-1] if history else {}).items() if k != "step"},
        wall_seconds=wall_before + elapsed,
        steps_per_second=(step - start) / elapsed if elapsed > 0 else 0.0,
        world_size=dist.world, ranks_in_sync=in_sync,
    )
    if dist.main:
        rows_png = sorted(snap_dir.glob("row_*.png"))
        result.snapshots = sorted(snap_dir.glob("sheet_*.png"))
        if finished:
            result.growing_up = growing_up_gif(
                [(int(p.stem.split("_")[1]), p) for p in rows_png], out / "growing_up.gif")
        result.curves = loss_curves_png(history, out / "loss_curves.png",
                                        f"{Path(cfg.out_dir).name}: {cfg.architecture}")
        summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
        summary["snapshots"] = [str(p) for p in result.snapshots]
        (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
        _tell(on_finish, result)
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.barrier()
    return result

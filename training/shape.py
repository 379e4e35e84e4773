"""Training the shape embedding (`models/shape.py`): the same thing drawn by other hands.

Emoji sets draw the same few thousand things, each in its own style. The same emoji in
two sets is a free positive pair: a frog from Noto and a frog from OpenMoji must land
close, a frog and a teapot far apart (InfoNCE over the batch). Things only one set
draws are paired with a distorted copy of themselves. Pages are the datasets' own
coloring pages (their line filter or their real outlines), seen in their ink frame.

Concepts are matched by name: Iconify sets and Fluent use CLDR-like names, OpenMoji
its code points (named through `unicodedata`). Only training splits are used.

    colorbot shape-train --datasets DATASETS/openmoji,DATASETS/noto,... --out runs/shape
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from models.shape import VIEW, ShapeConfig, ShapeEncoder, ink_view
from training.collections import ICONIFY_SETS

log = logging.getLogger(__name__)

_TONES = {"1F3FB": "light-skin-tone", "1F3FC": "medium-light-skin-tone",
          "1F3FD": "medium-skin-tone", "1F3FE": "medium-dark-skin-tone",
          "1F3FF": "dark-skin-tone"}
_FLUENT_TONES = {"light": "light-skin-tone", "medium_light": "medium-light-skin-tone",
                 "medium": "medium-skin-tone", "medium_dark": "medium-dark-skin-tone",
                 "dark": "dark-skin-tone"}


def skin_tone_variants(sources: Iterable[str]) -> set[str]:
    """The sources that redraw another source of their set in another skin tone.

    OpenMoji marks them with a tone code point; Fluent names them `<name>-<tone>` beside
    a `<name>-default` (so "police-car-light", whose set has no "police-car-default", is
    a car). A set of people drawn five times each over-weights people in a memory and
    averages their skins into gray-brown, so memories keep one drawing per thing.
    """
    sources = set(sources)
    tones = sorted(_FLUENT_TONES, key=len, reverse=True)
    out = set()
    for source in sources:
        head, _, rest = source.partition("/")
        if head == "openmoji":
            if any(point in _TONES for point in rest.split("-")):
                out.add(source)
            continue
        for tone in tones:
            for sep in ("-", "_"):
                suffix = sep + tone.replace("_", sep)
                if rest.endswith(suffix) and (
                        f"{head}/{rest[: -len(suffix)]}{sep}default" in sources):
                    out.add(source)
    return out


def _slug(text: str) -> str:
    # Without separators: Firefox OS names run words together ("alarmclock").
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def openmoji_names(cache_dir: str | Path | None) -> dict[str, str]:
    """OpenMoji's code points -> CLDR names ("1F438" -> "frog"), from the package's own
    `data/openmoji.json` in the download cache; {} when it is not there."""
    if cache_dir is None:
        return {}
    names: dict[str, str] = {}
    for path in sorted(Path(cache_dir).glob("npm/openmoji-*/package/data/openmoji.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")):
            if entry.get("hexcode") and entry.get("annotation"):
                names[entry["hexcode"]] = entry["annotation"]
    return names


def concept_of(source: str, openmoji: dict[str, str] | None = None) -> str | None:
    """The thing a dataset row draws, as a name shared across emoji sets, or None.
    `openmoji` maps OpenMoji code points to CLDR names (`openmoji_names`); without an
    entry, Unicode's character names stand in (they differ for some: FROG FACE)."""
    head, _, rest = source.partition("/")
    if head == "openmoji":
        if openmoji and rest in openmoji:
            return _slug(openmoji[rest]) or None
        points = [p for p in rest.split("-") if p not in ("FE0F", "200D")]
        names = []
        for point in points:
            if point in _TONES:
                names.append(_TONES[point])
                continue
            try:
                names.append(unicodedata.name(chr(int(point, 16))))
            except (ValueError, OverflowError):
                return None  # private use (OpenMoji's extras) or not a code point
        return _slug(" ".join(names)) or None
    if head == "fluent":
        stem = rest.rsplit("/", 1)[-1]
        stem = re.sub(r"_(flat|color|3d|high_contrast)", "", stem)
        stem = stem.removesuffix("_default").removesuffix("-default")
        for suffix, tone in sorted(_FLUENT_TONES.items(), key=lambda kv: -len(kv[0])):
            if stem.endswith("_" + suffix):
                stem = stem[: -len(suffix) - 1] + " " + tone
                break
        return _slug(stem) or None
    if head in ICONIFY_SETS:
        return _slug(rest) or None
    return None


@dataclass
class ShapeTrainConfig:
    datasets: list[str]
    cache_dir: str | None = None  # for OpenMoji's names (`openmoji_names`)
    steps: int = 1500
    batch: int = 64  # concepts per batch (two views each)
    shared_share: float = 0.75  # of a batch's concepts: drawn by several sets
    lr: float = 2e-3
    temperature: float = 0.1
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 100
    init: str | None = None  # start from this encoder's weights (shape.safetensors)
    net: ShapeConfig = field(default_factory=ShapeConfig)


@dataclass
class ShapeData:
    views: torch.Tensor  # (N, VIEW, VIEW) uint8 ink
    groups: list[list[int]]  # indices of the views of each concept (>= 1)
    sets: list[str]  # the set each view comes from


def load_views(datasets: list[str], split: str = "train", limit: int | None = None,
               cache_dir: str | Path | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Ink views, concept names and set names of every page of `split` in `datasets`."""
    from training.datasets.manifest import read_manifest

    names = openmoji_names(cache_dir)

    views, concepts, sets = [], [], []
    for folder in datasets:
        rows = [r for r in read_manifest(folder) if r.split == split]
        for row in rows[:limit]:
            concept = concept_of(row.source, names)
            with Image.open(Path(folder) / row.page) as im:
                page = np.asarray(im.convert("L"), dtype=np.float32) * (100.0 / 255.0)
            views.append(np.round(ink_view(page) * 255.0).astype(np.uint8))
            concepts.append(concept or f"{row.collection}:{row.id}")
            sets.append(row.collection)
    return (np.stack(views) if views else np.zeros((0, VIEW, VIEW), np.uint8),
            concepts, sets)


def group_views(concepts: list[str]) -> list[list[int]]:
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(concepts):
        by_name[name].append(i)
    return list(by_name.values())


def augment(ink: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, V, V) ink -> a distorted copy: scale, shift, small turn, line weight, blur."""
    b = ink.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen)

    scale, angle = uniform(0.82, 1.18), uniform(-0.14, 0.14)
    tx, ty = uniform(-0.08, 0.08), uniform(-0.08, 0.08)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
    out = F.grid_sample(ink, grid, padding_mode="zeros", align_corners=False)
    thick = torch.rand(b, generator=gen) < 0.35
    if thick.any():
        out[thick] = F.max_pool2d(out[thick], 3, stride=1, padding=1)
    thin = (torch.rand(b, generator=gen) < 0.2) & ~thick
    if thin.any():
        out[thin] = -F.max_pool2d(-out[thin], 3, stride=1, padding=1) * 0.5 + out[thin] * 0.5
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        out[blur] = F.avg_pool2d(out[blur], 3, stride=1, padding=1)
    out = out * uniform(0.55, 1.0)[:, None, None, None]
    return out.clamp(0.0, 1.0)


def sample_batch(data: ShapeData, batch: int, gen: torch.Generator,
                 shared_share: float = 0.75) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views of `batch` different concepts: from two sets where the concept has them.
    About `shared_share` of the concepts are ones several sets draw (the pairs that teach
    recognition; the rest only teach robustness to distortion)."""
    shared = [g for g, members in enumerate(data.groups) if len(members) >= 2]
    single = [g for g, members in enumerate(data.groups) if len(members) < 2]
    n_shared = min(len(shared), round(batch * shared_share)) if single else min(len(shared), batch)
    n_single = min(len(single), batch - n_shared)
    pick_shared = torch.randperm(len(shared), generator=gen)[:n_shared].tolist()
    pick_single = torch.randperm(len(single), generator=gen)[:n_single].tolist()
    order = [shared[i] for i in pick_shared] + [single[i] for i in pick_single]
    first, second = [], []
    for g in order:
        members = data.groups[g]
        if len(members) >= 2:
            pick = torch.randperm(len(members), generator=gen)[:2].tolist()
            first.append(members[pick[0]])
            second.append(members[pick[1]])
        else:
            first.append(members[0])
            second.append(members[0])
    a = data.views[first].float()[:, None] / 255.0
    b = data.views[second].float()[:, None] / 255.0
    return augment(a, gen), augment(b, gen)


def info_nce(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = za @ zb.T / temperature
    target = torch.arange(za.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def save_encoder(encoder: ShapeEncoder, path: Path, info: dict | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in encoder.state_dict().items()}
    meta = {"config": json.dumps(encoder.config_dict()), "info": json.dumps(info or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod(0o644)
    tmp.replace(path)


def load_encoder(path: str | Path) -> ShapeEncoder:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        cfg = ShapeConfig(**json.loads((fh.metadata() or {})["config"]))
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    encoder = ShapeEncoder(cfg)
    encoder.load_state_dict({k: v.float() if v.is_floating_point() else v
                             for k, v in state.items()})
    return encoder.eval()


def train_shape(cfg: ShapeTrainConfig, out: str | Path, *, resume: bool = True,
                progress: bool = True) -> dict:
    """Train (or resume) the encoder; writes `out/shape.safetensors` and `out/shape.json`."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    views, concepts, sets = load_views(cfg.datasets, cache_dir=cfg.cache_dir)
    data = ShapeData(torch.from_numpy(views), group_views(concepts), sets)
    shared = sum(1 for g in data.groups if len({sets[i] for i in g}) > 1)
    log.info("%d pages, %d concepts, %d drawn by more than one set",
             len(views), len(data.groups), shared)
    encoder = ShapeEncoder(cfg.net)
    if cfg.init:
        encoder.load_state_dict(load_encoder(cfg.init).state_dict())
    opt = torch.optim.AdamW(encoder.parameters(), lr=cfg.lr, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, history = 0, []
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        encoder.load_state_dict(state["encoder"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step, history = state["step"], state["history"]
    started = time.monotonic()
    encoder.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="shape")
    while step < cfg.steps:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in opt.param_groups:
            group["lr"] = lr
        a, b = sample_batch(data, cfg.batch, gen, cfg.shared_share)
        z = encoder(torch.cat([a, b]))
        loss = info_nce(z[: len(a)], z[len(a):], cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        history.append({"step": step, "loss": float(loss.detach())})
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            torch.save({"encoder": encoder.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "step": step, "history": history},
                       ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
    bar.close()
    encoder.eval()
    info = {"config": {**asdict(cfg), "net": asdict(cfg.net)}, "pages": len(views),
            "concepts": len(data.groups), "shared_concepts": shared,
            "steps": step, "final_loss": float(np.mean([h["loss"] for h in history[-50:]])),
            "wall_seconds_this_run": round(time.monotonic() - started, 1)}
    save_encoder(encoder, out / "shape.safetensors", info)
    (out / "shape.json").write_text(json.dumps({**info, "history": history[::10]}, indent=1))
    return info

"""The judge: a reward model that scores a (page, coloring) pair.

Two judges share the training, saving and scoring code:

- `BackboneJudge` (the default where the family's shared base is at hand) is built on
  a colorization backbone: the base U-Net, frozen, which already knows which colors
  suit which shapes. For a coloring it measures how likely the backbone finds the
  coloring's a/b cells on the page (the exact log-likelihood, softly assigned to the
  a/b grid so it stays differentiable), how far that is from the backbone's own best
  cells, and which colors sit on which kinds of pixels (the backbone's per-pixel
  features times a coarse a/b grid, pooled). A linear head on those, plus the global
  color statistics, is all the votes have to teach: the taste, not what a frog looks
  like.
- `Judge`, a small network from scratch (below), for tastes that need no knowledge of
  things (warmer, stronger ...) and for families without a base.

Trained on vote pairs with the Bradley–Terry loss: for each pair where people
preferred coloring w over coloring l of the same page, minimise
−log sigmoid(score(page, w) − score(page, l)). Its scores are only meaningful as
differences between colorings of one page — exactly what the promotion gate and the
fine-tuning ask of it.

Two paths see the coloring: a few strided convolutions (where the colors are, fills
versus blotches, color inside the lines) pooled over the picture, and the coloring's
global color statistics on the paper (mean and spread of L, a, b and chroma), which
carry most of a crowd's taste (warmer, stronger, softer ...) and keep a judge trained
on a few thousand pairs from overfitting. Everything is differentiable in the
coloring, so fine-tuning can climb the judge's score (`training/retrain.py`).

Inputs are in network scale (`models.colorspace`: L/50 − 1, ab/110) and resized to
`size`×`size` inside, so any H, W works. The backbone judge sees pages letterboxed to
the members' working resolution (`judge_inputs(..., letterbox=True)`), the way
fine-tuning does.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from models.colorspace import normalize_lab, rgb_to_lab
from training.votes import Preference, PreferenceSet, member_key

if TYPE_CHECKING:
    from db import ColoringRef, Database, VotedPage
    from models.memory import ColorMemory

N_STATS = 8  # color statistics the judge's second path sees


@dataclass
class JudgeConfig:
    size: int = 64  # side the page and coloring are looked at (resized, aspect not kept)
    base_channels: int = 16  # width of the first conv; doubles per level
    levels: int = 3  # stride-2 convs: 64 -> 8 px
    hidden: int = 32  # width of the scoring MLP
    paper_threshold: float = 0.3  # page L (network scale) above this is paper, not line

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class JudgeTrainConfig:
    steps: int = 400  # optimizer steps
    batch_pairs: int = 128  # pairs per step
    lr: float = 2e-3
    weight_decay: float = 1e-4
    heldout_share: float = 0.2  # share of *pages* whose pairs are held out
    seed: int = 0


def color_stats(page_l: torch.Tensor, lab: torch.Tensor, threshold: float) -> torch.Tensor:
    """(B, N_STATS): mean/std of L, a, b and mean chroma, sharpness of a/b, on the paper."""
    paper = (page_l > threshold).to(lab.dtype)  # (B, 1, H, W)
    area = paper.sum(dim=(2, 3)).clamp_min(1.0)  # (B, 1)
    mean = (lab * paper).sum(dim=(2, 3)) / area  # (B, 3)
    var = (((lab - mean[..., None, None]) ** 2) * paper).sum(dim=(2, 3)) / area
    std = (var + 1e-6).sqrt()  # (B, 3)
    chroma = (lab[:, 1:] ** 2).sum(dim=1, keepdim=True).add(1e-6).sqrt()  # (B, 1, H, W)
    mean_chroma = (chroma * paper).sum(dim=(2, 3)) / area  # (B, 1)
    # Local a/b gradient on the paper: blotchy versus flat fills.
    gx = (lab[:, 1:, :, 1:] - lab[:, 1:, :, :-1]).abs().sum(dim=1, keepdim=True)
    both = paper[..., 1:] * paper[..., :-1]
    grad = (gx * both).sum(dim=(2, 3)) / both.sum(dim=(2, 3)).clamp_min(1.0)  # (B, 1)
    return torch.cat((mean, std, mean_chroma, grad * 10.0), dim=1)  # (B, 8)


class Judge(nn.Module):
    """A small conv net + color statistics, trained from scratch on the votes."""

    letterbox = False

    def __init__(self, cfg: JudgeConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or JudgeConfig()
        layers: list[nn.Module] = []
        cin = 4  # page L + coloring L, a, b
        for i in range(cfg.levels):
            cout = cfg.base_channels * 2**i
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GELU()]
            cin = cout
        self.convs = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Linear(cin + N_STATS, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, 1)
        )
        # Spread (std) of the scores over the colorings it was trained on: the unit in
        # which fine-tuning measures "a better score". Set by `train_judge`.
        self.register_buffer("score_scale", torch.ones(()))

    def forward(self, page_l: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        """page_l (B, 1, H, W), lab (B, 3, H, W), network scale -> (B,) scores."""
        s = self.cfg.size
        if page_l.shape[-2:] != (s, s):
            page_l = F.interpolate(page_l, size=(s, s), mode="bilinear", antialias=True)
        if lab.shape[-2:] != (s, s):
            lab = F.interpolate(lab, size=(s, s), mode="bilinear", antialias=True)
        feats = self.convs(torch.cat((page_l, lab), dim=1)).mean(dim=(2, 3))  # (B, C)
        stats = color_stats(page_l, lab, self.cfg.paper_threshold)  # (B, 8)
        return self.mlp(torch.cat((feats, stats), dim=1)).squeeze(1)


def letterbox(img: Image.Image, size: int) -> Image.Image:
    """`img` scaled to fit size x size, centered on white paper (aspect kept)."""
    img = img.convert("RGB")
    scale = size / max(img.size)
    w, h = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    out = Image.new("RGB", (size, size), "white")
    out.paste(img.resize((w, h), Image.Resampling.BILINEAR), ((size - w) // 2, (size - h) // 2))
    return out


def judge_inputs(
    page: Image.Image, coloring: Image.Image, size: int, letterbox_pages: bool = False
) -> torch.Tensor:
    """(4, size, size): page L and coloring LAB in network scale, for a judge.

    Squashed to a square by default (`Judge`); letterboxed on white with
    `letterbox_pages` (`BackboneJudge`: its backbone saw pages that way).
    """
    if letterbox_pages:
        page_t = _to_tensor(letterbox(page, size))
        col_t = _to_tensor(letterbox(coloring, size))
        page_lab = normalize_lab(rgb_to_lab(page_t))
        return torch.cat((page_lab[:1], normalize_lab(rgb_to_lab(col_t))), dim=0)
    # Reduce with Pillow first (cheap, box filter) so big pages do not cost tensor memory.
    page_t = _to_tensor(page.convert("RGB").resize((size, size), Image.Resampling.BOX))
    col_t = _to_tensor(coloring.convert("RGB").resize((size, size), Image.Resampling.BOX))
    page_lab = normalize_lab(rgb_to_lab(page_t))
    return torch.cat((page_lab[:1], normalize_lab(rgb_to_lab(col_t))), dim=0)


def _to_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


@dataclass
class PairData:
    """Unique (page, coloring) inputs and the vote pairs between them."""

    inputs: torch.Tensor  # (N, 4, S, S): page L + coloring LAB, network scale
    winners: np.ndarray  # (P,) indices into inputs
    losers: np.ndarray  # (P,)
    pages: np.ndarray  # (P,) page id of each pair (held-out split is by page)


@dataclass
class JudgeResult:
    judge: Judge | BackboneJudge
    train_accuracy: float
    heldout_accuracy: float
    heldout_pairs: int
    train_pairs: int
    heldout_pages: list[int] = field(default_factory=list)
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # the judge's score of every input

    def metrics(self) -> dict:
        return {
            "train_accuracy": round(self.train_accuracy, 4),
            "heldout_accuracy": round(self.heldout_accuracy, 4),
            "heldout_pairs": self.heldout_pairs,
            "train_pairs": self.train_pairs,
            "seconds": round(self.seconds, 1),
        }


def split_pages(pages: np.ndarray, share: float, seed: int) -> set[int]:
    """Page ids held out: a fixed random `share` of the distinct pages."""
    unique = np.unique(pages)
    rng = np.random.default_rng(seed)
    n = int(round(len(unique) * share))
    return set(int(p) for p in rng.choice(unique, size=n, replace=False)) if n else set()


@torch.no_grad()
def score_inputs(judge: AnyJudge, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    judge.eval()
    out = [judge(x[:, :1], x[:, 1:]) for x in inputs.split(batch)]
    return torch.cat(out) if out else torch.zeros(0)


def pair_accuracy(scores: torch.Tensor, winners: np.ndarray, losers: np.ndarray) -> float:
    if len(winners) == 0:
        return float("nan")
    w, lo = torch.as_tensor(winners), torch.as_tensor(losers)
    return float((scores[w] > scores[lo]).float().mean())


def _judged(judge: Judge | BackboneJudge, scores: torch.Tensor, data: PairData,
            held: np.ndarray, heldout_pages: set[int], t0: float,
            losses: list[float]) -> JudgeResult:
    """A trained judge's result (both kinds): its scores set to unit spread, accuracy on
    the training and the held-out pages' pairs."""
    if len(scores) > 1:
        judge.score_scale.fill_(max(float(scores.std()), 1e-3))
    return JudgeResult(
        judge=judge,
        train_accuracy=pair_accuracy(scores, data.winners[~held], data.losers[~held]),
        heldout_accuracy=pair_accuracy(scores, data.winners[held], data.losers[held]),
        heldout_pages=sorted(heldout_pages),
        heldout_pairs=int(held.sum()),
        train_pairs=int((~held).sum()),
        seconds=time.perf_counter() - t0,
        losses=losses,
        scores=scores.tolist(),
    )


def train_judge(
    data: PairData,
    cfg: JudgeConfig | None = None,
    train_cfg: JudgeTrainConfig | None = None,
    heldout_pages: set[int] | None = None,
) -> JudgeResult:
    """Fit a judge with the Bradley–Terry loss; report accuracy on held-out pages' pairs."""
    cfg = cfg or JudgeConfig()
    tc = train_cfg or JudgeTrainConfig()
    t0 = time.perf_counter()
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    if heldout_pages is None:
        heldout_pages = split_pages(data.pages, tc.heldout_share, tc.seed)
    held = np.isin(data.pages, list(heldout_pages))
    tr_w, tr_l = data.winners[~held], data.losers[~held]

    judge = Judge(cfg)
    opt = torch.optim.AdamW(judge.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, tc.steps))
    losses = []
    judge.train()
    for _ in range(tc.steps if len(tr_w) else 0):
        pick = rng.integers(0, len(tr_w), min(tc.batch_pairs, len(tr_w)))
        w, lo = tr_w[pick], tr_l[pick]
        x_w, x_l = data.inputs[w], data.inputs[lo]
        # Mirror images at random: a mirrored coloring is as good as the original.
        flip = torch.rand(len(pick)) < 0.5
        x_w = torch.where(flip[:, None, None, None], x_w.flip(-1), x_w)
        x_l = torch.where(flip[:, None, None, None], x_l.flip(-1), x_l)
        margin = judge(x_w[:, :1], x_w[:, 1:]) - judge(x_l[:, :1], x_l[:, 1:])
        loss = -F.logsigmoid(margin).mean()  # Bradley–Terry negative log-likelihood
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    judge.eval()
    scores = score_inputs(judge, data.inputs)
    return _judged(judge, scores, data, held, heldout_pages, t0, losses)


# --- a judge on a colorization backbone ------------------------------------------------


@dataclass
class BackboneJudgeConfig:
    size: int = 128  # side the letterboxed page and coloring are looked at (working size)
    coarse_bins: int = 5  # a/b grid (per axis) on which colors meet the backbone's features
    coarse_extent: float = 0.6  # the coarse grid spans ±extent (network scale, ab/110)
    paper_threshold: float = 0.3  # page L (network scale) above this is paper, not line
    backbone: dict = field(default_factory=dict)  # the backbone's UNetConfig fields
    # The recalled true colors' shape (`RecallMemory.shape_dict`: pages, bins, encoder
    # config); empty: a judge without memory.
    recall: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class BackboneJudge(nn.Module):
    """Scores (page, coloring) from what a frozen colorization backbone says about it.

    `describe` turns a batch into descriptors (B, D); `head` scores them. Training
    computes the descriptors once and fits only the head; `forward` does both, and is
    differentiable in the coloring (soft cell assignments), like `Judge`.
    """

    letterbox = True

    def __init__(self, backbone: nn.Module, cfg: BackboneJudgeConfig | None = None,
                 memory: RecallMemory | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or BackboneJudgeConfig()
        self.backbone = backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        # What similar drawings really looked like (None: the backbone alone).
        self.memory = memory
        if memory is not None:
            cfg.recall = memory.shape_dict()
            for p in memory.parameters():
                p.requires_grad_(False)
        channels = backbone.ab_head.weight.shape[1]
        centers = torch.linspace(-cfg.coarse_extent, cfg.coarse_extent, cfg.coarse_bins)
        a, b = torch.meshgrid(centers, centers, indexing="ij")
        self.register_buffer("coarse", torch.stack((a.reshape(-1), b.reshape(-1)), 1))
        self.n_recall = N_RECALL if memory is not None else 0
        self.n_desc = 2 + self.n_recall + channels * cfg.coarse_bins**2 + N_STATS
        # Descriptors are standardized with the training set's mean and spread, so one
        # weight decay suits them all.
        self.register_buffer("desc_mean", torch.zeros(self.n_desc))
        self.register_buffer("desc_std", torch.ones(self.n_desc))
        self.linear = nn.Linear(self.n_desc, 1)
        self.stats_mlp = nn.Sequential(nn.Linear(N_STATS, 16), nn.GELU(), nn.Linear(16, 1))
        with torch.no_grad():
            # Start from "the backbone's likelihood is the score": what fits, wins; with
            # a memory, from "the recalled true colors' likelihood is the score".
            self.linear.weight.zero_()
            self.linear.weight[0, self.start_feature] = 1.0
            self.stats_mlp[-1].weight.zero_()
        self.register_buffer("score_scale", torch.ones(()))

    @property
    def start_feature(self) -> int:
        """The descriptor the head starts from (and weight decay pulls back to)."""
        if self.memory is None:
            return 0
        return 2 + (RECALL_LAB if self.memory.light is not None else RECALL_START)

    def train(self, mode: bool = True) -> BackboneJudge:
        super().train(mode)
        self.backbone.eval()  # frozen: BatchNorm keeps its statistics
        if self.memory is not None:
            self.memory.eval()
        return self

    def page_view(self, page_l: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What the backbone sees in pages (B, 1, S, S): features (B, C, S, S) and a/b
        log-probabilities (B, Q, S, S); with a memory also the recalled true colors'
        per-pixel and per-region a/b log-probabilities (B, Q', S, S) each and the
        recall's confidence (B, 1, 1, 1). Shared by every coloring of a page."""
        with torch.no_grad():
            feats = self.backbone.features(page_l)
            logp = torch.log_softmax(self.backbone.ab_head(feats).float(), dim=1)
            if self.memory is None:
                return feats, logp
            paper = page_l > self.cfg.paper_threshold
            pixel, region, conf, region_l = self.memory.recall_maps(page_l, paper)
        return feats, logp, pixel, region, conf, region_l

    def describe(
        self,
        page_l: torch.Tensor,
        lab: torch.Tensor,
        view: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """page_l (B, 1, S, S), lab (B, 3, S, S) network scale -> (B, D) descriptors.

        `view`: the pages' `page_view`, when already computed."""
        s = self.cfg.size
        if page_l.shape[-2:] != (s, s):
            page_l = F.interpolate(page_l, size=(s, s), mode="bilinear", antialias=True)
        if lab.shape[-2:] != (s, s):
            lab = F.interpolate(lab, size=(s, s), mode="bilinear", antialias=True)
        view = view if view is not None else self.page_view(page_l)
        feats, logp = view[0], view[1]
        ab = lab[:, 1:]  # (B, 2, S, S)
        paper = (page_l > self.cfg.paper_threshold).to(lab.dtype)  # (B, 1, S, S)
        area = paper.sum(dim=(2, 3)).clamp_min(1.0)  # (B, 1)
        ll = cell_log_likelihood(logp, ab)  # (B, 1, S, S) log p of its colors
        regret = ll - logp.max(dim=1, keepdim=True).values  # how far below the best cell
        ll_mean = (ll * paper).sum(dim=(2, 3)) / area  # (B, 1)
        regret_mean = (regret * paper).sum(dim=(2, 3)) / area  # (B, 1)
        # Which colors (coarse grid) sit on which kinds of pixels (backbone features).
        coarse = _soft_assign(ab, self.coarse.to(lab.dtype), self.cfg.coarse_extent
                              / max(1, self.cfg.coarse_bins - 1))  # (B, K, S, S)
        moments = torch.einsum("bfhw,bkhw->bfk", feats * paper, coarse) / area[..., None]
        stats = color_stats(page_l, lab, self.cfg.paper_threshold)  # (B, 8)
        parts = [ll_mean, regret_mean]
        if self.memory is not None:
            parts.append(recall_fit(view[2], view[3], view[4], lab, paper, area, view[5]))
        return torch.cat((*parts, moments.flatten(1), stats), dim=1)

    def head(self, desc: torch.Tensor) -> torch.Tensor:
        """(B, D) descriptors -> (B,) scores."""
        z = (desc - self.desc_mean) / self.desc_std
        return (self.linear(z) + self.stats_mlp(z[:, -N_STATS:])).squeeze(1)

    def forward(self, page_l: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        return self.head(self.describe(page_l, lab))


def cell_log_likelihood(logp: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Log-probability of each pixel's a/b under a per-pixel a/b cell distribution.

    logp (B, Q, H, W) over a square grid of cells (`models.unet.ab_bin_centers`: Q =
    bins², row-major over (a, b), centers spanning [-1, 1]); ab (B, 2, H, W) network
    scale -> (B, 1, H, W). Between cell centers the log-probabilities are interpolated
    bilinearly, so a color shown between two cells (chroma hedged, gamut-mapped)
    counts for both, and the value is differentiable in `logp` and in `ab`.
    """
    bins = int(round(logp.shape[1] ** 0.5))
    # Continuous cell coordinates: center i sits at -1 + (i + 0.5) * 2 / bins.
    pos = ((ab.float() + 1.0) * bins / 2.0 - 0.5).clamp(0.0, bins - 1.0)  # (B, 2, H, W)
    lo = pos.floor().clamp(max=bins - 2).long()
    frac = pos - lo  # (B, 2, H, W) in [0, 1]
    out = torch.zeros_like(frac[:, :1])
    for da in (0, 1):
        wa = frac[:, :1] if da else 1.0 - frac[:, :1]
        for db in (0, 1):
            wb = frac[:, 1:] if db else 1.0 - frac[:, 1:]
            index = (lo[:, :1] + da) * bins + (lo[:, 1:] + db)  # (B, 1, H, W)
            out = out + wa * wb * logp.gather(1, index)
    return out


def _soft_assign(ab: torch.Tensor, centers: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 2, H, W) a/b and (K, 2) centers -> (B, K, H, W) Gaussian soft assignment."""
    d2 = ((ab[:, None] - centers[None, :, :, None, None]) ** 2).sum(dim=2)  # (B, K, H, W)
    return torch.softmax(-d2 / (2.0 * sigma * sigma), dim=1)


# --- recalled true colors: what similar drawings really looked like -------------------

N_RECALL = 7  # recall descriptors (`recall_fit`)
RECALL_START = 2  # of those, the one a judge with memory starts from (region distance)
RECALL_LAB = 6  # ... or, with remembered lightness, the region L*a*b* distance
RECALL_SMOOTH = 0.05  # share of a uniform a/b distribution mixed into a recall
WHITE_PAPER = (0.0, 0.0)  # a/b (network scale) of the paper outside a remembered picture


class RecallMemory(nn.Module):
    """Remembered pages' true colors keyed by the shape embedding, for the judge.

    The members' memories (`models.memory.ColorMemory`: per remembered page a shape
    key and its true a/b cells in the ink frame) pooled into one. For a voted page it
    recalls the `k` most alike remembered drawings (also in mirror image: a mirrored
    page recalls the original), and turns their color maps into a per-pixel a/b
    distribution on the judge's letterboxed grid, and per closed region (the paper
    between the lines), and, where the memories remember lightness, each region's
    recalled L* (measured on the 2,000 faithful votes: 62.1 -> 66.2 % held out). The
    voted pages' own truth is never in it: it holds what the memories were built from
    (members' training splits).
    """

    def __init__(self, keys: torch.Tensor, cells: torch.Tensor, bins: int,
                 encoder: nn.Module, k: int = 8, temperature: float = 0.05,
                 mirror: bool = True, light: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("keys", keys.to(torch.float16))  # (N, D) unit rows
        self.register_buffer("cells", cells.to(torch.uint8))  # (N, SIDE, SIDE) a/b cells
        # (N, LIGHT_SIDE, LIGHT_SIDE) L* x 2.55 of the same pages, when the memories
        # remember it (`models.memory`); a judge without it judges a/b alone.
        self.light: torch.Tensor | None
        if light is not None:
            self.register_buffer("light", light.to(torch.uint8))
        else:
            self.light = None
        self.bins, self.k, self.temperature, self.mirror = bins, k, temperature, mirror
        self.encoder = encoder.eval()
        from models.unet import ab_bin_centers

        self.register_buffer("centers", ab_bin_centers(bins), persistent=False)

    def shape_dict(self) -> dict:
        return {"pages": int(self.keys.shape[0]), "dim": int(self.keys.shape[1]),
                "side": int(self.cells.shape[-1]), "bins": self.bins, "k": self.k,
                "temperature": self.temperature, "mirror": self.mirror,
                "encoder": self.encoder.config_dict(),
                "light_side": int(self.light.shape[-1]) if self.light is not None else 0}

    @classmethod
    def empty(cls, shape: dict) -> RecallMemory:
        """A memory of `shape` (`shape_dict`) to load a saved judge's state into."""
        from models.shape import ShapeConfig, ShapeEncoder

        n, side, light_side = shape["pages"], shape["side"], shape.get("light_side", 0)
        light = torch.zeros(n, light_side, light_side, dtype=torch.uint8) if light_side else None
        return cls(torch.zeros(n, shape["dim"]), torch.zeros(n, side, side, dtype=torch.uint8),
                   shape["bins"], ShapeEncoder(ShapeConfig(**shape["encoder"])), shape["k"],
                   shape["temperature"], shape["mirror"], light)

    @classmethod
    def from_memories(cls, memories: list[ColorMemory], **kw: Any) -> RecallMemory:
        """One memory from several `ColorMemory`s keyed by the same encoder and grid."""
        if not memories or any(m.encoder is None for m in memories):
            raise ValueError("the judge recalls by the shape embedding: give memories with one")
        first = memories[0]
        ref = first.encoder.state_dict()
        for m in memories[1:]:
            if m.bins != first.bins or any(
                    not torch.equal(v, m.encoder.state_dict()[k]) for k, v in ref.items()):
                raise ValueError("memories keyed by different encoders or grids")
        keys = torch.cat([m.keys for m in memories])
        cells = torch.cat([m.cells for m in memories])
        lights = [m.light for m in memories]
        light = torch.cat(lights) if all(x is not None for x in lights) else None
        kw.setdefault("temperature", first.temperature)
        return cls(keys, cells, first.bins, copy.deepcopy(first.encoder), light=light, **kw)

    @classmethod
    def load(cls, paths: str | Path | Iterable[str | Path], **kw: Any) -> RecallMemory:
        """From memory files (`ColorMemory.save`), a list or one comma-joined string."""
        from models.memory import ColorMemory

        if isinstance(paths, (str, Path)):
            paths = [p for p in str(paths).split(",") if p]
        return cls.from_memories([ColorMemory.load(p) for p in paths], **kw)

    @torch.no_grad()
    def recall_maps(self, page_l: torch.Tensor, paper: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """page_l (B, 1, S, S) network scale, paper (B, 1, S, S) bool -> the recalled
        a/b log-probabilities per pixel and per region (B, Q, S, S) each, the recall's
        confidence (B, 1, 1, 1): the best cosine similarity, and the recalled L* per
        region (B, 1, S, S; NaN when the memory has no lightness)."""
        from scipy import ndimage

        from models.memory import recall_key

        b, _, h, w = page_l.shape
        q = self.bins * self.bins
        pixel = torch.zeros(b, q, h, w)
        region = torch.zeros(b, q, h, w)
        conf = torch.zeros(b, 1, 1, 1)
        region_l = torch.full((b, 1, h, w), float("nan"))
        keys = self.keys.float()
        side = self.cells.shape[-1]
        white = int((torch.tensor(WHITE_PAPER) + 1.0).mul(self.bins / 2.0).long()
                    .clamp(0, self.bins - 1).mul(torch.tensor([self.bins, 1])).sum())
        for i in range(b):
            lightness = ((page_l[i, 0].float() + 1.0) * 50.0).clamp(0.0, 100.0).numpy()
            key = recall_key(lightness)
            views = np.stack([key.view, key.view[:, ::-1]]) if self.mirror else key.view[None]
            emb = torch.from_numpy(self.encoder.embed(np.ascontiguousarray(views)))  # (V, D)
            sims = (emb @ keys.T).max(dim=0).values  # (N,) as drawn or in mirror image
            top, idx = torch.topk(sims, min(self.k, sims.numel()))
            weights = torch.softmax(top / self.temperature, dim=0)
            maps = self.cells[idx].long()  # (k, SIDE, SIDE)
            if self.mirror:
                # Which way round: the remembered picture's colored area against the
                # page's drawing (ink and the paper it encloses), as is and mirrored.
                shape = _silhouette(paper[i, 0].numpy(), key.frame, side)  # (SIDE, SIDE)
                colored = (maps != white).float()
                agree = [(colored * shape).sum(dim=(1, 2)),
                         (colored.flip(-1) * shape).sum(dim=(1, 2))]
                flipped = agree[1] > agree[0]
                maps[flipped] = maps[flipped].flip(-1)
            light = None
            if self.light is not None:
                light = self.light[idx].float() / 2.55  # (k, LS, LS)
                if self.mirror:
                    light[flipped] = light[flipped].flip(-1)
            ys = torch.arange(h, dtype=torch.float32) + 0.5
            xs = torch.arange(w, dtype=torch.float32) + 0.5
            fy, fx = key.frame.to_frame(ys, xs)
            inside = ((fy >= 0) & (fy < 1))[:, None] & ((fx >= 0) & (fx < 1))[None, :]
            cy = (fy * side).floor().long().clamp(0, side - 1)
            cx = (fx * side).floor().long().clamp(0, side - 1)
            at = (cy[:, None] * side + cx[None, :]).reshape(-1)  # (S*S,)
            cell = maps.reshape(len(maps), -1)[:, at]  # (k, S*S)
            cell = torch.where(inside.reshape(1, -1), cell, torch.full_like(cell, white))
            dist = torch.zeros(q, h * w)
            dist.scatter_add_(0, cell, weights[:, None].expand_as(cell).contiguous())
            dist = _smooth_ab(dist, self.bins)  # (Q, S*S)
            pixel[i] = dist.reshape(q, h, w)
            labels, n_regions = ndimage.label(paper[i, 0].numpy())
            lab_t = torch.from_numpy(labels.reshape(-1)).long()
            sums = torch.zeros(n_regions + 1, q).index_add_(0, lab_t, dist.T)
            per_region = sums / sums.sum(dim=1, keepdim=True).clamp_min(1e-9)
            reg = per_region[lab_t].T  # (Q, S*S)
            reg = torch.where(lab_t[None] > 0, reg, dist)  # lines keep their own pixels'
            region[i] = reg.reshape(q, h, w)
            conf[i] = top[0]
            if light is not None:
                ls = light.shape[-1]
                at_l = ((cy * ls // side)[:, None] * ls + (cx * ls // side)[None, :]).reshape(-1)
                pix_l = (weights[:, None] * light.reshape(len(light), -1)[:, at_l]).sum(0)
                pix_l = torch.where(inside.reshape(-1), pix_l, torch.full_like(pix_l, 100.0))
                l_sums = torch.zeros(n_regions + 1).index_add_(0, lab_t, pix_l)
                counts = torch.zeros(n_regions + 1).index_add_(0, lab_t, torch.ones_like(pix_l))
                reg_l = (l_sums / counts.clamp_min(1.0))[lab_t]
                region_l[i, 0] = torch.where(lab_t > 0, reg_l, pix_l).reshape(h, w)
        return (pixel.clamp_min(1e-6).log(), region.clamp_min(1e-6).log(), conf, region_l)


def _silhouette(paper: np.ndarray, frame: Any, side: int) -> torch.Tensor:
    """(side, side) share of the drawing (not the open paper around it) in each cell of
    the ink frame, from a page's paper mask (S, S) bool."""
    from scipy import ndimage

    from models.shape import crop_frame

    labels, _ = ndimage.label(paper)
    border = np.unique(np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1])))
    outside = np.isin(labels, border[border > 0])
    drawing = torch.from_numpy((~outside).astype(np.float32))
    shape = crop_frame(drawing[None], frame, side, 0.0)[0]
    return shape - shape.mean()


def _smooth_ab(dist: torch.Tensor, bins: int) -> torch.Tensor:
    """(Q, P) a/b distributions blurred over neighbouring cells (a near miss is close)
    and mixed with a little of the uniform one."""
    kernel = torch.tensor([[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]])
    grid = dist.T.reshape(-1, 1, bins, bins)
    blurred = F.conv2d(grid, kernel[None, None], padding=1).reshape(-1, bins * bins).T
    blurred = blurred / blurred.sum(dim=0, keepdim=True).clamp_min(1e-9)
    return (1.0 - RECALL_SMOOTH) * blurred + RECALL_SMOOTH / (bins * bins)


def recall_fit(pixel: torch.Tensor, region: torch.Tensor, conf: torch.Tensor,
               lab: torch.Tensor, paper: torch.Tensor, area: torch.Tensor,
               region_l: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N_RECALL) how well a coloring's a/b fits the recalled true colors, on the
    paper: log-likelihood per pixel and per region; the expected a/b distance to the
    recalled colors (ab/110 units) per region and per pixel (what a CIEDE2000-minded
    voter would expect the coloring to be off by, given what similar drawings looked
    like), and the region one times the recall's confidence; with the recalled L*
    per region (`region_l`, not NaN) also the L* distance to it and the L*a*b* one
    (both 0 without). Differentiable in `lab` (B, 3, S, S) network scale."""
    ab = lab[:, 1:]
    ll_pixel = (cell_log_likelihood(pixel, ab) * paper).sum(dim=(2, 3)) / area
    ll_region = (cell_log_likelihood(region, ab) * paper).sum(dim=(2, 3)) / area
    bins = int(round(region.shape[1] ** 0.5))
    from models.unet import ab_bin_centers

    centers = ab_bin_centers(bins).to(ab.dtype)  # (Q, 2)
    gap = ((ab[:, None] - centers[None, :, :, None, None]) ** 2).sum(dim=2).add(1e-6).sqrt()
    dist_region = ((region.exp() * gap).sum(dim=1, keepdim=True) * paper).sum(dim=(2, 3)) / area
    dist_pixel = ((pixel.exp() * gap).sum(dim=1, keepdim=True) * paper).sum(dim=(2, 3)) / area
    c = conf.reshape(-1, 1)
    parts = [ll_pixel, ll_region, -dist_region, -dist_pixel, -c * dist_region]
    if region_l is not None and not bool(torch.isnan(region_l).any()):
        # L* in the a/b units (/110): a faithful voter counts a too-light brown as off.
        gap_l = ((lab[:, :1] + 1.0) * 50.0 - region_l).abs() / 110.0  # (B, 1, S, S)
        expected_ab = (region.exp() * gap).sum(dim=1, keepdim=True)
        lab_gap = (expected_ab.square() + gap_l.square()).add(1e-6).sqrt()
        parts += [-(gap_l * paper).sum(dim=(2, 3)) / area,
                  -(lab_gap * paper).sum(dim=(2, 3)) / area]
    else:
        parts += [torch.zeros_like(ll_pixel), torch.zeros_like(ll_pixel)]
    return torch.cat(parts, dim=1)


def default_recall_memory(named: str | None = None) -> RecallMemory | None:
    """The memories a judge recalls true colors from: the files named in `named`, else
    in the setting $COLORBOT_JUDGE_MEMORY (`Settings.judge_memory`; comma-joined),
    pooled; unset or empty: the bundled family's shared memory (train splits of seven
    emoji sets); "none", or files that cannot be
    read: None (the judge goes without). Build them from training splits only
    (`colorbot remember`, `training.memory.memory_from_dataset`): never from the pages
    people vote on. Measured on 2,000 simulated votes each (noto/emojione val and test
    pages), the shared memory's judge against none: faithful 66.2 vs 60.4 %, mixed 61.1
    vs 60.4 %, warm 80.6 vs 80.2 % held out."""
    import logging

    from colorbot.settings import Settings
    from models.registry import BUNDLED_FAMILY_DIR
    from training.memory import SHARED_MEMORY

    named = (Settings.from_env().judge_memory if named is None else named).strip()
    if named.lower() == "none":
        return None
    paths = [p for p in named.split(",") if p] or [str(BUNDLED_FAMILY_DIR / SHARED_MEMORY)]
    try:
        return RecallMemory.load(paths)
    except (ValueError, OSError, KeyError) as exc:
        logging.getLogger(__name__).warning("judge without memory: %s", exc)
        return None


def load_backbone(weights: str | Path, config: dict) -> nn.Module:
    """A UNet from `config` (UNetConfig fields) and a safetensors file (e.g. the shared
    base, `training/base/base.safetensors` + its `base.json` "config.net")."""
    from models.unet import UNet, UNetConfig

    net = UNet(UNetConfig(**config))
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    net.load_state_dict(state)
    return net.eval()


BASE_DIR = Path(__file__).resolve().parent / "base"


def base_backbone(folder: str | Path | None = None) -> tuple[nn.Module, dict] | None:
    """The family's shared base and its UNetConfig fields, or None where it is absent."""
    folder = Path(folder) if folder is not None else BASE_DIR
    weights, info = folder / "base.safetensors", folder / "base.json"
    if not (weights.exists() and info.exists()):
        return None
    run = json.loads(info.read_text(encoding="utf-8"))
    net_cfg = dict(run["config"].get("net", {}))
    kind = run["config"].get("kind", "lineart")
    config = {"in_channels": 1, "out_channels": 3 if kind == "lineart" else 2, **net_cfg}
    return load_backbone(weights, config), config


@torch.no_grad()
def describe_inputs(judge: BackboneJudge, inputs: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """(N, D) descriptors of (N, 4, S, S) inputs. Each distinct page runs through the
    backbone once, however many of its colorings there are."""
    judge.eval()
    out = torch.zeros(len(inputs), judge.n_desc)
    groups: dict[bytes, list[int]] = {}
    for i in range(len(inputs)):
        groups.setdefault(inputs[i, 0].numpy().tobytes(), []).append(i)
    pages = list(groups.values())
    for start in range(0, len(pages), batch):
        chunk = pages[start : start + batch]
        page_l = inputs[[g[0] for g in chunk], :1]
        views = judge.page_view(page_l)
        for k, members in enumerate(chunk):
            x = inputs[members]
            n = len(members)
            view = tuple(v[k : k + 1].expand(n, *v.shape[1:]) for v in views)
            out[members] = judge.describe(x[:, :1], x[:, 1:], view)
    return out


def train_backbone_judge(
    data: PairData,
    backbone: nn.Module,
    cfg: BackboneJudgeConfig | None = None,
    train_cfg: JudgeTrainConfig | None = None,
    heldout_pages: set[int] | None = None,
    memory: RecallMemory | None | str = "auto",
    descriptors: torch.Tensor | None = None,
) -> JudgeResult:
    """Fit a `BackboneJudge`'s head with the Bradley–Terry loss (full batch; the
    backbone's descriptors are computed once); accuracy on held-out pages' pairs.

    `memory`: the true colors the judge recalls for a page (`RecallMemory`, or memory
    files comma-joined); "auto" (the default) `default_recall_memory()`, None none.
    `descriptors`: `describe_inputs` of `data.inputs` by a judge of this backbone,
    config and memory, when already computed (they are the slow part)."""
    cfg = cfg or BackboneJudgeConfig()
    tc = train_cfg or JudgeTrainConfig()
    t0 = time.perf_counter()
    torch.manual_seed(tc.seed)
    if heldout_pages is None:
        heldout_pages = split_pages(data.pages, tc.heldout_share, tc.seed)
    held = np.isin(data.pages, list(heldout_pages))
    tr_w, tr_l = data.winners[~held], data.losers[~held]

    if isinstance(memory, str):
        memory = default_recall_memory() if memory == "auto" else RecallMemory.load(memory)
    judge = BackboneJudge(backbone, cfg, memory)
    desc = describe_inputs(judge, data.inputs) if descriptors is None else descriptors  # (N, D)
    used = np.unique(np.concatenate((tr_w, tr_l))) if len(tr_w) else np.arange(len(desc))
    if len(used):
        judge.desc_mean.copy_(desc[used].mean(0))
        judge.desc_std.copy_(desc[used].std(0).clamp_min(1e-4) if len(used) > 1
                             else torch.ones(judge.n_desc))
    start = copy.deepcopy(judge.state_dict())
    # The strength of the pull back to the starting score is chosen on the training
    # pages, then the head is refit on all of them. Without memory (start: the
    # backbone's likelihood) by validation loss on a fifth of them; with a memory
    # (start: the expected distance to the recalled colors, a good score by itself)
    # by three-fold cross-validation, most pairs ordered right, then the lowest loss,
    # among stronger pulls too (measured: the loss on one fifth picked too weak a pull
    # and lost 1.7 points held out on faithful votes).
    decay = tc.weight_decay
    tr_pages = data.pages[~held]
    if len(np.unique(tr_pages)) >= 10:
        if memory is None:
            folds = [split_pages(tr_pages, 0.2, tc.seed + 1)]
            decays = JUDGE_DECAYS
        else:
            rng = np.random.default_rng(tc.seed + 1)
            pages = rng.permutation(np.unique(tr_pages))
            folds = [set(int(p) for p in pages[k::3]) for k in range(3)]
            decays = RECALL_JUDGE_DECAYS
        best = None
        for candidate in decays:
            right, loss = 0.0, 0.0
            for fold in folds:
                val = np.isin(tr_pages, list(fold))
                judge.load_state_dict(start)
                _fit_head(judge, desc, tr_w[~val], tr_l[~val], candidate, tc)
                with torch.no_grad():
                    s = judge.head(desc)
                    margin = s[tr_w[val]] - s[tr_l[val]]
                right += float((margin > 0).float().sum()) if memory is not None else 0.0
                loss += float(-F.logsigmoid(margin).sum())
            if best is None or (right, -loss) > best[:2]:
                best = (right, -loss, candidate)
        decay = best[2]
        judge.load_state_dict(start)
    losses = _fit_head(judge, desc, tr_w, tr_l, decay, tc)
    judge.eval()
    with torch.no_grad():
        scores = judge.head(desc)
    judge.chosen_decay = decay
    return _judged(judge, scores, data, held, heldout_pages, t0, losses)


# Pulls towards the starting score (see train_backbone_judge), strongest first.
JUDGE_DECAYS = (1.0, 0.1, 0.01, 0.001)
RECALL_JUDGE_DECAYS = (1000.0, 100.0, 10.0, 1.0, 0.1, 0.01, 0.001)


def _fit_head(judge: BackboneJudge, desc: torch.Tensor, winners: np.ndarray,
              losers: np.ndarray, decay: float, tc: JudgeTrainConfig) -> list[float]:
    """Full-batch Bradley–Terry fit of the head on precomputed descriptors."""
    params = [p for n, p in judge.named_parameters() if not n.startswith("backbone.")]
    opt = torch.optim.Adam(params, lr=tc.lr)
    w_t, l_t = torch.as_tensor(winners), torch.as_tensor(losers)
    losses = []
    judge.train()
    for _ in range(tc.steps if len(winners) else 0):
        scores = judge.head(desc)
        loss = -F.logsigmoid(scores[w_t] - scores[l_t]).mean()  # Bradley–Terry
        # Weight decay towards the starting point (the backbone's likelihood alone).
        start = judge.start_feature
        w = judge.linear.weight
        reg = w[:, :start].square().sum() + w[:, start + 1:].square().sum() + sum(
            p.square().sum() for p in judge.stats_mlp.parameters())
        opt.zero_grad(set_to_none=True)
        (loss + decay * reg).backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


AnyJudge = Judge | BackboneJudge


def save_judge(judge: AnyJudge, folder: str | Path, metrics: dict | None = None) -> Path:
    """judge.safetensors (a backbone judge carries its backbone: it is self-contained)
    and judge.json (kind, config, metrics)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in judge.state_dict().items()}
    save_file(state, str(folder / "judge.safetensors"))
    kind = "backbone" if isinstance(judge, BackboneJudge) else "small"
    info = {"kind": kind, "config": judge.cfg.to_dict(), "metrics": metrics or {}}
    (folder / "judge.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


def load_judge(folder: str | Path) -> AnyJudge:
    folder = Path(folder)
    info = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
    judge: AnyJudge
    if info.get("kind") == "backbone":
        from models.unet import UNet, UNetConfig

        cfg = BackboneJudgeConfig(**info["config"])
        memory = RecallMemory.empty(cfg.recall) if cfg.recall else None
        judge = BackboneJudge(UNet(UNetConfig(**cfg.backbone)), cfg, memory)
    else:
        judge = Judge(JudgeConfig(**info["config"]))
    judge.load_state_dict(load_file(str(folder / "judge.safetensors")))
    return judge.eval()


@torch.no_grad()
def score_colorings(
    judge: AnyJudge, page: Image.Image, colorings: list[Image.Image]
) -> list[float]:
    """Judge scores of several colorings of one page (higher is better)."""
    if not colorings:
        return []
    x = torch.stack([judge_inputs(page, c, judge.cfg.size, judge.letterbox) for c in colorings])
    return score_inputs(judge, x).tolist()


# --- the judge's view of the voted pages ----------------------------------------------


def judged_preferences(
    voted: Iterable[VotedPage],
    image_of: Callable[[str], Image.Image],
    score: Callable[[Image.Image, list[Image.Image]], list[float]],
    *,
    by_version: bool = False,
) -> PreferenceSet:
    """Pairs as the judge sees them: on each voted page, every two colorings people were
    shown, the one `score` rates higher winning (ties give no pair).

    A vote names only the voter's favourite, so two colorings nobody picked are never
    compared by the votes; a steady runner-up can then rank below a member that is the
    favourite on a few pages and last elsewhere. The judge, trained on those votes,
    scores every coloring and fills in those comparisons. `voted` are `db.VotedPage`
    rows, `image_of(sha256)` opens a stored picture, `score(page, colorings)` is e.g.
    `functools.partial(score_colorings, judge)`. A pair's group is its page, so a
    bootstrap resamples pages.
    """
    pages: dict[int, tuple[str, dict[int, ColoringRef]]] = {}
    for row in voted:
        _, shown = pages.setdefault(row.page_id, (row.page_sha256, {}))
        for ref in (row.voted, *row.others):
            shown[ref.coloring_id] = ref
    out = PreferenceSet()
    for page_id, (page_sha, shown) in sorted(pages.items()):
        refs = [shown[k] for k in sorted(shown)]
        values = score(image_of(page_sha), [image_of(r.sha256) for r in refs])
        scored = [
            (ref, member_key(ref.member, ref.version, by_version), value)
            for ref, value in zip(refs, values, strict=True)
        ]
        made = 0
        for x, y in itertools.combinations(scored, 2):
            if x[1] == y[1] or x[2] == y[2]:  # the same member key, or a tie
                continue
            (win, kw, _), (lose, kl, _) = (x, y) if x[2] > y[2] else (y, x)
            out.pairs.append(
                Preference(
                    page_id=page_id,
                    winner=kw,
                    loser=kl,
                    winner_coloring_id=win.coloring_id,
                    loser_coloring_id=lose.coloring_id,
                    group=page_id,
                )
            )
            made += 1
        out.pages += made > 0
    return out


async def load_judged_preferences(
    db: Database, judge: AnyJudge, guild_id: int | None = None, *, by_version: bool = False
) -> PreferenceSet:
    """`judged_preferences` of the live votes in `db` (one guild, or all), pictures read
    from its store; the scoring runs in a thread."""
    import asyncio
    import functools
    import io

    rows = await db.voted_pages(guild_id)

    def image_of(sha256: str) -> Image.Image:
        return Image.open(io.BytesIO(db.store.get(sha256))).convert("RGB")

    return await asyncio.to_thread(
        judged_preferences,
        rows,
        image_of,
        functools.partial(score_colorings, judge),
        by_version=by_version,
    )


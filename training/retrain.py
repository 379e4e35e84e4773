"""Retraining from votes: fine-tune each member towards what people preferred.

For one member, on the pages people voted on:
- where another member's coloring won over this member's, the winning coloring is a
  target (L1 in LAB on the paper, not the lines) — "color it like the one they liked";
- everywhere, climb the judge's score of the member's own coloring (the judge is
  differentiable in the coloring, `training/judge.py`) ...
- ... held back by an anchor: L1 to the member's own earlier outputs (its parent
  version's, computed once before fine-tuning), so it stays itself and does not drift
  into whatever fools the judge.

The result is a new member version (weights beside the family, parent recorded),
which the promotion gate (`training/promotion.py`) then accepts or keeps back.

`colorbot retrain` runs the whole cycle (`run_cycle`): export votes → judge →
fine-tune every member → evaluate → gate → promote. The pieces are plain functions so
tests and the benchmark can call them on tiny data.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from models.colorspace import denormalize_lab, keep_lines, normalize_lab, rgb_to_lab, scale_chroma
from training.judge import AnyJudge, cell_log_likelihood, letterbox
from training.votes_gate import VoteGateConfig

if TYPE_CHECKING:
    from pathlib import Path

    from db import Database
    from models.family import Family
    from models.registry import FamilyMember, WorkerReloader
    from training.votes import Preference

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    size: int = 128  # pages are letterboxed (white) to size x size for fine-tuning
    steps: int = 40  # optimizer steps per member (few: a nudge, not a retraining)
    batch: int = 8  # pages per step
    lr: float = 1e-4  # small: 3e-4 x 80 steps moved members far off their own test split
    fill: bool = True  # judge/target see region-filled colorings, as the pipeline shows them
    target_weight: float = 1.0  # L1 to the winning coloring, on pages this member lost
    judge_weight: float = 0.25  # weight of −judge score (in units of the judge's score spread)
    anchor_weight: float = 5.0  # L1 to the parent's own outputs: stay yourself (strong,
    # so the candidate stays within the promotion gate's CIEDE2000 tolerance)
    gamut_weight: float = 1.0  # chroma predicted beyond what sRGB shows (see `displayable`)
    seed: int = 0


# --- tensors from pictures -------------------------------------------------------------


def lab_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """(3, size, size) LAB in network scale of a letterboxed picture."""
    arr = np.asarray(letterbox(img, size), dtype=np.float32) / 255.0
    return normalize_lab(rgb_to_lab(torch.from_numpy(arr).permute(2, 0, 1)))


def compose(page_l: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """The coloring a network output makes, as the pipeline composites it (network scale).

    Line-art members (3 channels) keep the page's dark lines: L = min(L_page, L_pred).
    Photo members (2 channels) keep the page's L.
    """
    if pred.shape[1] == 2:
        return torch.cat((page_l, pred), dim=1)
    return torch.cat((keep_lines(page_l, pred[:, :1]), pred[:, 1:]), dim=1)


def region_fill(pred: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Each region's pixels take the region's mean prediction (differentiably).

    The pipeline fills each region enclosed by lines with the median of the prediction;
    the mean is its differentiable stand-in, so fine-tuning sees the flat colorings people
    see — and cannot "improve" pixels that a fill averages away.
    pred (B, C, H, W), regions (B, H, W) int64, ids 1..K per page, 0 = keep the pixel.
    """
    b, c, h, w = pred.shape
    k = int(regions.max()) + 1
    ids = (regions + torch.arange(b, device=regions.device)[:, None, None] * k).reshape(-1)
    vals = pred.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C)
    sums = torch.zeros(b * k, c, dtype=pred.dtype).index_add(0, ids, vals)
    counts = torch.zeros(b * k, dtype=pred.dtype).index_add(0, ids, torch.ones_like(vals[:, 0]))
    mean = sums / counts.clamp_min(1.0)[:, None]
    filled = mean[ids].reshape(b, h, w, c).permute(0, 3, 1, 2)
    return torch.where((regions > 0)[:, None], filled, pred)


def page_regions(page_l: torch.Tensor) -> torch.Tensor:
    """(S, S) int64 region of every pixel of a page (network-scale L (1, S, S)), as the
    pipeline's region finder sees it; lines belong to their nearest region."""
    from models.regions import find_regions

    lightness = ((page_l[0] + 1.0) * 50.0).numpy()
    regions = find_regions(lightness, paper=100.0)
    if regions.count == 0:
        return torch.zeros(page_l.shape[-2:], dtype=torch.int64)
    return torch.from_numpy(regions.assigned.astype(np.int64))


def displayable(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The colors a PNG of this LAB (network scale) shows, and how far out of gamut it is.

    A network can predict LAB no screen shows (L 100 with strong a/b). The pipeline keeps
    L and hue and lowers the chroma until the color fits sRGB (`scale_chroma`), so an
    over-bright "orange" comes out white. Training must judge what people see, or it
    learns to "improve" colors that are mapped away: the chroma factor is applied here
    (found without gradient), and the second result — the chroma cut away, mean over
    pixels — is a loss that keeps predictions inside the gamut.
    """
    lab_d = denormalize_lab(lab)
    with torch.no_grad():
        mapped = scale_chroma(lab_d, 1.0)
        chroma = lab_d[:, 1:].norm(dim=1, keepdim=True)
        factor = (mapped[:, 1:].norm(dim=1, keepdim=True) / chroma.clamp_min(1e-6)).clamp(0, 1)
    ab = lab_d[:, 1:] * factor
    outside = (lab_d[:, 1:] - ab).abs().mean() / 110.0
    return normalize_lab(torch.cat((lab_d[:, :1], ab), dim=1)), outside


# --- fine-tuning one member ------------------------------------------------------------


@dataclass
class MemberExamples:
    """What one member fine-tunes on: pages and, where it lost, the coloring that won."""

    pages: torch.Tensor  # (N, 1, S, S) page L, network scale
    targets: torch.Tensor  # (N, 3, S, S) winning coloring LAB, network scale (zeros: none)
    has_target: torch.Tensor  # (N,) bool
    regions: torch.Tensor | None = None  # (N, S, S) int64 region id per pixel (0: none)
    page_ids: list[int] = field(default_factory=list)


@dataclass
class FinetuneResult:
    net: nn.Module
    steps: int
    seconds: float
    losses: list[dict[str, float]]
    pages: int
    target_pages: int

    def summary(self) -> dict:
        first, last = (self.losses[0], self.losses[-1]) if self.losses else ({}, {})
        return {
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "pages": self.pages,
            "target_pages": self.target_pages,
            "loss_first": {k: round(v, 4) for k, v in first.items()},
            "loss_last": {k: round(v, 4) for k, v in last.items()},
        }


def _freeze_norm_stats(net: nn.Module) -> None:
    # Small fine-tuning batches would wreck BatchNorm's running statistics, and dropout
    # would make the anchor noisy: keep both as at inference.
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout):
            m.eval()


@torch.no_grad()
def _outputs(net: nn.Module, pages: torch.Tensor, batch: int = 16) -> torch.Tensor:
    net.eval()
    return torch.cat([net(x) for x in pages.split(batch)])


def finetune_member(
    parent: nn.Module,
    examples: MemberExamples,
    judge: AnyJudge | None,
    cfg: FinetuneConfig | None = None,
    log_every: int = 20,
) -> FinetuneResult:
    """A fine-tuned copy of `parent` (which is left untouched)."""
    cfg = cfg or FinetuneConfig()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    net = copy.deepcopy(parent).float()
    anchor = _outputs(net, examples.pages)  # (N, C, S, S) the parent's own colorings
    if judge is not None:
        judge = judge.eval()
        for p in judge.parameters():
            p.requires_grad_(False)
        # Judge scores are only defined up to scale: measure the push in units of their
        # spread over the colorings the judge was trained on.
        judge_scale = max(float(judge.score_scale), 1e-3)
    paper = (examples.pages > 0.3).float()  # (N, 1, S, S) targets count on the paper only

    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    n = len(examples.pages)
    losses: list[dict[str, float]] = []
    for step in range(cfg.steps if n else 0):
        net.train()
        _freeze_norm_stats(net)
        idx = torch.randint(0, n, (min(cfg.batch, n),), generator=gen)
        page_l = examples.pages[idx]
        pred = net(page_l)  # (B, C, S, S)
        shown = pred
        if cfg.fill and examples.regions is not None and pred.shape[1] == 3:
            shown = region_fill(pred, examples.regions[idx])
        colored, outside = displayable(compose(page_l, shown))  # (B, 3, S, S) what people see
        terms: dict[str, torch.Tensor] = {}
        terms["anchor"] = cfg.anchor_weight * (pred - anchor[idx]).abs().mean()
        terms["gamut"] = cfg.gamut_weight * outside
        has = examples.has_target[idx]
        if cfg.target_weight > 0 and bool(has.any()):
            m = paper[idx][has]
            diff = (colored[has] - examples.targets[idx][has]).abs() * m
            terms["target"] = cfg.target_weight * diff.sum() / (m.sum() * 3).clamp_min(1.0)
        if judge is not None and cfg.judge_weight != 0:
            terms["judge"] = -cfg.judge_weight * judge(page_l, colored).mean() / judge_scale
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        # One bad batch must not throw a member far off: small, bounded steps.
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append({k: float(v.detach()) for k, v in terms.items()})
        if log_every and (step % log_every == 0 or step == cfg.steps - 1):
            log.debug("step %d %s", step, losses[-1])
    net.eval()
    return FinetuneResult(
        net=net,
        steps=len(losses),
        seconds=time.perf_counter() - t0,
        losses=losses,
        pages=n,
        target_pages=int(examples.has_target.sum()),
    )


def member_examples(
    member: str,
    page_ids: Sequence[int],
    page_images: dict[int, Image.Image],
    winners_over: dict[tuple[int, str], Image.Image],
    size: int,
) -> MemberExamples:
    """Tensors for one member: every page, and the winning coloring where it lost.

    `winners_over[(page_id, member)]` is the coloring people preferred over this
    member's coloring of that page (the most voted one when there were several).
    """
    pages, targets, has = [], [], []
    for pid in page_ids:
        pages.append(lab_tensor(page_images[pid], size)[:1])
        won = winners_over.get((pid, member))
        has.append(won is not None)
        targets.append(lab_tensor(won, size) if won is not None else torch.zeros(3, size, size))
    if not pages:
        empty = torch.zeros(0, 1, size, size)
        return MemberExamples(
            empty, torch.zeros(0, 3, size, size), torch.zeros(0, dtype=torch.bool)
        )
    page_t = torch.stack(pages)
    regions = torch.stack([page_regions(p) for p in page_t])
    return MemberExamples(page_t, torch.stack(targets), torch.tensor(has), regions, list(page_ids))


def winning_targets(
    prefs: Sequence, coloring_owner: Callable[[int], str]
) -> dict[tuple[int, str], int]:
    """(page, losing member) -> the coloring id that beat it most often on that page."""
    counts: dict[tuple[int, str], dict[int, int]] = {}
    for p in prefs:
        loser = coloring_owner(p.loser_coloring_id)
        tally = counts.setdefault((p.page_id, loser), {})
        tally[p.winner_coloring_id] = tally.get(p.winner_coloring_id, 0) + 1
    return {key: max(tally, key=lambda c: (tally[c], -c)) for key, tally in counts.items()}


# --- fine-tuning on preference pairs, DPO-style -----------------------------------------


@dataclass
class PreferenceTuneConfig:
    """DPO on the a/b head's exact log-likelihood of the colorings people compared."""

    size: int = 128  # pages letterboxed to the members' working resolution
    steps: int = 300  # optimizer steps per member
    batch_pairs: int = 64  # preference pairs per step
    lr: float = 1e-3
    beta: float = 10.0  # DPO's inverse temperature on the log-ratio margin (per-pixel nats)
    # Decoder blocks trained besides the a/b head (the rest stays frozen). 0: the head
    # alone, on `pixels` paper pixels sampled per page from frozen features (fast: a
    # 1x1 head on cached features, no convolution per step).
    tail_blocks: int = 0
    pixels: int = 1024  # paper pixels per page the head-only tuning looks at
    sft_weight: float = 0.0  # + cross-entropy on the winners' cells ("winner as target")
    seed: int = 0


def tunes_by_likelihood(net: nn.Module) -> bool:
    """Whether a member has an a/b distribution head (what preference tuning needs)."""
    return bool(getattr(net, "classifies_ab", False)) and hasattr(net, "ups")


def _prefix(net: nn.Module, page_l: torch.Tensor, tail: int) -> tuple[torch.Tensor, list]:
    """Run a UNet up to its last `tail` up blocks: (x, skips those blocks still need).

    The same steps as `UNet.features` (padding to 2**depth, stem, downs, ups), split so
    the frozen part runs once per page and only the tail is trained.
    """
    h, w = page_l.shape[-2:]
    m = 2**net.cfg.depth
    x = F.pad(page_l, (0, (-w) % m, 0, (-h) % m), mode="replicate")
    skips = [net.stem(x)]
    for down in net.downs:
        skips.append(down(skips[-1]))
    x = skips.pop()
    for up in net.ups[: len(net.ups) - tail]:
        x = up(x, skips.pop())
    return x, skips[::-1][:tail][::-1] if tail else []


def _tail_logp(net: nn.Module, x: torch.Tensor, skips: list, tail: int, h: int, w: int):
    """Finish `_prefix`: the last `tail` up blocks and the a/b head -> (B, Q, h, w) log p."""
    skips = list(skips)
    for up in net.ups[len(net.ups) - tail :]:
        x = up(x, skips.pop())
    feats = x[..., :h, :w]
    return torch.log_softmax(net.ab_head(feats).float(), dim=1)


@dataclass
class PreferenceExamples:
    """Pages, the colorings' a/b on them, and the preference pairs between colorings."""

    pages: torch.Tensor  # (P, 1, S, S) page L, network scale
    ab: torch.Tensor  # (N, 2, S, S) each coloring's a/b, network scale
    page_of: torch.Tensor  # (N,) the page index of each coloring
    winners: torch.Tensor  # (K,) coloring indices
    losers: torch.Tensor  # (K,)
    paper: torch.Tensor = field(init=False)  # (P, 1, S, S) pixels that are not lines

    def __post_init__(self) -> None:
        self.paper = (self.pages > 0.3).float()


def preference_examples(
    pairs: Sequence[Preference],
    page_images: dict[int, Image.Image],
    coloring_images: dict[int, Image.Image],
    size: int,
) -> PreferenceExamples:
    """Tensors for preference tuning from vote pairs (`training.votes.Preference`)."""
    page_index: dict[int, int] = {}
    col_index: dict[int, int] = {}
    pages, abs_, page_of = [], [], []
    for p in pairs:
        if p.page_id not in page_index:
            page_index[p.page_id] = len(pages)
            pages.append(lab_tensor(page_images[p.page_id], size)[:1])
        for cid in (p.winner_coloring_id, p.loser_coloring_id):
            if cid not in col_index:
                col_index[cid] = len(abs_)
                abs_.append(lab_tensor(coloring_images[cid], size)[1:])
                page_of.append(page_index[p.page_id])
    if not pairs:
        z = torch.zeros(0, dtype=torch.long)
        return PreferenceExamples(torch.zeros(0, 1, size, size), torch.zeros(0, 2, size, size),
                                  z, z, z)
    return PreferenceExamples(
        torch.stack(pages),
        torch.stack(abs_),
        torch.tensor(page_of),
        torch.tensor([col_index[p.winner_coloring_id] for p in pairs]),
        torch.tensor([col_index[p.loser_coloring_id] for p in pairs]),
    )


def coloring_log_likelihoods(
    logp: torch.Tensor, ab: torch.Tensor, paper: torch.Tensor
) -> torch.Tensor:
    """Mean log-probability of each coloring's a/b over the page's paper: (B,).

    The region decoder chooses, per region, the cell with the best mean log-probability
    over the region's pixels; for flat region colors this mean over the paper is the
    area-weighted sum of those region scores of the colors shown. logp (B, Q, S, S),
    ab (B, 2, S, S), paper (B, 1, S, S).
    """
    ll = cell_log_likelihood(logp, ab)  # (B, 1, S, S)
    return (ll * paper).sum(dim=(1, 2, 3)) / paper.sum(dim=(1, 2, 3)).clamp_min(1.0)


@torch.no_grad()
def pair_log_likelihoods(
    net: nn.Module, ex: PreferenceExamples, batch: int = 8
) -> torch.Tensor:
    """(N,) each coloring's mean log-likelihood under `net` (eval mode)."""
    net.eval()
    out = torch.zeros(len(ex.ab))
    for start in range(0, len(ex.pages), batch):
        idx = torch.arange(start, min(start + batch, len(ex.pages)))
        logp = torch.log_softmax(net.heads(net.features(ex.pages[idx]))[1].float(), dim=1)
        for k, p in enumerate(idx.tolist()):
            cols = (ex.page_of == p).nonzero().flatten()
            if len(cols):
                n = len(cols)
                out[cols] = coloring_log_likelihoods(
                    logp[k : k + 1].expand(n, -1, -1, -1), ex.ab[cols],
                    ex.paper[p : p + 1].expand(n, -1, -1, -1))
    return out


def _tune_only(net: nn.Module, trainable: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Freeze `net` but `trainable`; an Adam over those."""
    for p in net.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    return torch.optim.Adam(trainable, lr=lr)


def _dpo_step(opt: torch.optim.Optimizer, trainable: list[torch.Tensor],
              gain_w: torch.Tensor, gain_l: torch.Tensor, ll_w: torch.Tensor,
              cfg: PreferenceTuneConfig) -> dict[str, float]:
    """One DPO update: the winner's log-likelihood gain over the frozen parent must beat
    the loser's (plus the optional SFT pull on the winner); returns the step's figures."""
    margin = gain_w - gain_l
    terms = {"dpo": -F.logsigmoid(cfg.beta * margin).mean()}
    if cfg.sft_weight:
        terms["sft"] = -cfg.sft_weight * ll_w.mean()
    loss = sum(terms.values())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    opt.step()
    return {**{k: float(v.detach()) for k, v in terms.items()},
            "accuracy": float((margin > 0).float().mean())}


def preference_tune_member(
    parent: nn.Module, ex: PreferenceExamples, cfg: PreferenceTuneConfig | None = None
) -> FinetuneResult:
    """A copy of `parent` tuned DPO-style on `ex`'s pairs (the parent is untouched).

    loss = -log σ(β [(log π(w) - log π_ref(w)) - (log π(l) - log π_ref(l))]), where
    log π is the mean log-likelihood of a coloring's a/b cells under the member
    (`coloring_log_likelihoods`) and π_ref the frozen parent: winners' colors become
    more likely relative to losers', measured against where the parent stood, so the
    member moves only as far as the votes ask. Only the last `tail_blocks` decoder
    blocks and the a/b head train; the lightness head and the encoder stay as they
    were (lines and lightness do not drift).
    """
    cfg = cfg or PreferenceTuneConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = copy.deepcopy(parent).float().eval()
    tail = max(0, min(cfg.tail_blocks, len(net.ups)))
    if tail == 0:
        return _tune_head_on_samples(net, ex, cfg, t0, gen)
    h, w = ex.pages.shape[-2:]
    ref = torch.zeros(len(ex.ab))  # (N,) each coloring under the frozen parent
    cached = []
    with torch.no_grad():  # the frozen part, once per page; the parent's view with it
        for i in range(len(ex.pages)):
            cached.append(_prefix(net, ex.pages[i : i + 1], tail))
            cols = (ex.page_of == i).nonzero().flatten()
            if len(cols):
                logp = _tail_logp(net, *cached[-1], tail, h, w).expand(len(cols), -1, -1, -1)
                paper = ex.paper[i : i + 1].expand(len(cols), -1, -1, -1)
                ref[cols] = coloring_log_likelihoods(logp, ex.ab[cols], paper)
    trainable = [*net.ab_head.parameters()]
    for up in net.ups[len(net.ups) - tail :]:
        trainable += list(up.parameters())
    opt = _tune_only(net, trainable, cfg.lr)
    n_pairs = len(ex.winners)
    losses: list[dict[str, float]] = []
    for _ in range(cfg.steps if n_pairs else 0):
        net.train()
        _freeze_norm_stats(net)
        pick = torch.randint(0, n_pairs, (min(cfg.batch_pairs, n_pairs),), generator=gen)
        wi, li = ex.winners[pick], ex.losers[pick]
        pages = torch.unique(ex.page_of[wi])
        slot = {int(p): k for k, p in enumerate(pages.tolist())}
        x = torch.cat([cached[int(p)][0] for p in pages])
        skips = [torch.cat([cached[int(p)][1][j] for p in pages]) for j in range(tail)]
        logp = _tail_logp(net, x, skips, tail, h, w)  # (P, Q, S, S)
        rows = torch.tensor([slot[int(p)] for p in ex.page_of[wi].tolist()])
        paper = ex.paper[ex.page_of[wi]]
        ll_w = coloring_log_likelihoods(logp[rows], ex.ab[wi], paper)
        ll_l = coloring_log_likelihoods(logp[rows], ex.ab[li], paper)
        losses.append(_dpo_step(opt, trainable, ll_w - ref[wi], ll_l - ref[li], ll_w, cfg))
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return FinetuneResult(
        net=net,
        steps=len(losses),
        seconds=time.perf_counter() - t0,
        losses=losses,
        pages=len(ex.pages),
        target_pages=n_pairs,
    )


def _tune_head_on_samples(
    net: nn.Module,
    ex: PreferenceExamples,
    cfg: PreferenceTuneConfig,
    t0: float,
    gen: torch.Generator,
) -> FinetuneResult:
    """`preference_tune_member` with the a/b head alone: each page's frozen features at
    `cfg.pixels` sampled paper pixels are computed once, and a step is a 1x1 head on
    them (the log-likelihood is a mean over the paper, so a sample estimates it)."""
    feats, abs_ = [], torch.zeros(len(ex.ab), 2, 1, cfg.pixels)
    with torch.no_grad():
        for i in range(len(ex.pages)):
            f = net.features(ex.pages[i : i + 1])[0]  # (C, S, S)
            where = ex.paper[i, 0].flatten().nonzero().flatten()
            if len(where) == 0:
                where = torch.arange(f.shape[1] * f.shape[2])
            pick = where[torch.randint(0, len(where), (cfg.pixels,), generator=gen)]
            feats.append(f.flatten(1)[:, pick])  # (C, K)
            cols = (ex.page_of == i).nonzero().flatten()
            abs_[cols] = ex.ab[cols].flatten(2)[:, :, pick][:, :, None, :]
    feats_t = torch.stack(feats)  # (P, C, K)

    def page_logp(pages: torch.Tensor) -> torch.Tensor:
        x = feats_t[pages].permute(0, 2, 1)  # (P, K, C)
        logits = F.linear(x, net.ab_head.weight.flatten(1), net.ab_head.bias)  # (P, K, Q)
        return torch.log_softmax(logits, dim=-1).permute(0, 2, 1)[:, :, None, :]  # (P,Q,1,K)

    def mean_ll(logp: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return cell_log_likelihood(logp, abs_[cols]).mean(dim=(1, 2, 3))

    with torch.no_grad():
        ref = torch.zeros(len(ex.ab))
        for i in range(len(ex.pages)):
            cols = (ex.page_of == i).nonzero().flatten()
            if len(cols):
                ref[cols] = mean_ll(page_logp(torch.tensor([i])).expand(len(cols), -1, -1, -1),
                                    cols)
    trainable = list(net.ab_head.parameters())
    opt = _tune_only(net, trainable, cfg.lr)
    n_pairs = len(ex.winners)
    losses: list[dict[str, float]] = []
    for _ in range(cfg.steps if n_pairs else 0):
        pick = torch.randint(0, n_pairs, (min(cfg.batch_pairs, n_pairs),), generator=gen)
        wi, li = ex.winners[pick], ex.losers[pick]
        logp = page_logp(ex.page_of[wi])  # (B, Q, 1, K)
        ll_w, ll_l = mean_ll(logp, wi), mean_ll(logp, li)
        losses.append(_dpo_step(opt, trainable, ll_w - ref[wi], ll_l - ref[li], ll_w, cfg))
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return FinetuneResult(net=net, steps=len(losses), seconds=time.perf_counter() - t0,
                          losses=losses, pages=len(ex.pages), target_pages=n_pairs)


# --- coloring with a given version -------------------------------------------------------


def color_with(family: Family, entry: FamilyMember, pages: Sequence[Image.Image]
               ) -> list[Image.Image]:
    """Color `pages` with one member version (`entry`, a FamilyMember) through the pipeline."""
    from models.family import Family
    from models.pipeline import Colorizer

    colorizer = Colorizer(Family(family.root, [entry]), device="cpu")
    return [out[entry.name] for out in colorizer.colorize(list(pages), [entry.name])]


def judge_pages(
    judge: AnyJudge, pages: Sequence[Image.Image], colorings: Sequence[Image.Image]
) -> list[float]:
    """The judge's score of each (page, coloring)."""
    from training.judge import judge_inputs, score_inputs

    if not pages:
        return []
    x = torch.stack(
        [judge_inputs(p, c, judge.cfg.size, judge.letterbox)
         for p, c in zip(pages, colorings, strict=True)]
    )
    return score_inputs(judge, x).tolist()


# --- the whole cycle ---------------------------------------------------------------------


@dataclass
class CycleConfig:
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # method "target"
    tune: PreferenceTuneConfig = field(default_factory=PreferenceTuneConfig)  # method "dpo"
    # "dpo": preference pairs on the a/b head's likelihood (`preference_tune_member`);
    # "target": the winning coloring as a target plus the judge (`finetune_member`);
    # "auto": dpo for members with an a/b distribution head, target for the others.
    method: str = "auto"
    # "backbone": the judge on the shared base (`BackboneJudge`); "small": a small net
    # from scratch (`Judge`); "auto": backbone where the base is found.
    judge: str = "auto"
    backbone_dir: str | None = None  # the base's folder (None: training/base)
    backbone_judge_size: int = 128  # the backbone judge's view (the working resolution)
    judge_size: int = 64  # side at which the small judge looks at (page, coloring)
    judge_steps: int = 400
    heldout_share: float = 0.2  # voted pages kept out of judge training and fine-tuning
    members: list[str] | None = None  # None: every member of the family
    datasets_root: str | None = None  # <root>/<collection> per member, for its evaluation
    eval_pages: int = 24  # test-split pages per evaluation (0: skip evaluation)
    gate_pages: int = 40  # held-out voted pages the gate colors with parent and candidate
    promote: bool = True  # False: record candidates and decisions, promote nothing
    guild_id: int | None = None  # learn from one guild's votes only
    gate: VoteGateConfig = field(default_factory=VoteGateConfig)
    # page id -> group: pages of one group are held out together (the default group is
    # the picture's bytes, so a picture posted twice is never on both sides).
    page_groups: dict[int, str] | None = None
    seed: int = 0


@dataclass
class MemberOutcome:
    member: str
    parent_version: int
    version: int | None = None
    promoted: bool = False
    reason: str = ""
    finetune: dict = field(default_factory=dict)
    gate: dict = field(default_factory=dict)
    seconds: float = 0.0
    method: str = ""  # "dpo" or "target" (CycleConfig.method)


@dataclass
class CycleReport:
    votes: int = 0
    pairs: int = 0
    pages: int = 0
    train_pages: list[int] = field(default_factory=list)
    heldout_pages: list[int] = field(default_factory=list)
    judge: dict = field(default_factory=dict)
    judge_board: dict = field(default_factory=dict)  # rows (Elo), pages, judge accuracy
    members: list[MemberOutcome] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    training_run_id: int | None = None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _image(data: bytes) -> Image.Image:
    import io

    return Image.open(io.BytesIO(data)).convert("RGB")


def evaluate_version(family: Family, entry: FamilyMember, datasets_root: str | None,
                     pages: int) -> dict[str, Any] | None:
    """The training package's evaluation of one version on its collection's test split.

    Returns {"ciede2000", "colorfulness", "lines_kept_dark", "pages"} or None when the
    member has no dataset there (the gate then says evaluation was not checked).
    """
    if not datasets_root or pages <= 0:
        return None
    from pathlib import Path

    from models.family import Family
    from training.evaluate import evaluate

    collection = (entry.extra or {}).get("collection") or entry.name
    dataset = Path(datasets_root) / collection
    if not (dataset / "manifest.jsonl").exists():
        return None
    try:
        report = evaluate(
            Family(family.root, [entry]),
            [entry.name],
            dataset,
            "test",
            limit=pages,
            device="cpu",
            raw=False,
        )
    except ValueError as exc:  # no test split
        log.warning("evaluation of %s v%s skipped: %s", entry.name, entry.version, exc)
        return None
    figures = dict(report["members"][entry.name]["member"])
    figures["pages"] = report["pages"]
    return figures


async def run_cycle(
    db: Database,
    family_root: str | Path,
    cfg: CycleConfig | None = None,
    *,
    workers: WorkerReloader | None = None,
    judge_dir: str | Path | None = None,
    on_finish: Callable[[CycleReport], object] | None = None,
) -> CycleReport:
    """Export votes -> judge -> tune each member -> evaluate -> gate -> promote.

    Reads votes, pages and colorings through `db` (images from its store), writes each
    candidate beside the family (`training/promotion.py`) and records it in `db` with
    its parent, evaluation and the gate's decision (`training/votes_gate.py`); a
    promotion goes through the family registry (`models.registry.promote`) with the
    gate in front of its validator, which tells `workers` to reload. The judge's board
    (every two colorings of each voted page, compared by the judge) is stored in the
    training run's metrics ("judge_board"), where `/leaderboard` reads it without torch.
    `on_finish(report)` (may be async: the training news) is told the finished cycle;
    its failure is logged, not raised.
    """
    import asyncio
    from pathlib import Path

    from models.family import Family
    from models.registry import PromotionRefused, Registry, promote
    from training.judge import (
        BackboneJudgeConfig,
        JudgeConfig,
        JudgeTrainConfig,
        PairData,
        base_backbone,
        judge_inputs,
        save_judge,
        split_pages,
        train_backbone_judge,
        train_judge,
    )
    from training.leaderboard import head_to_head_leaderboard
    from training.promotion import save_candidate
    from training.votes import preferences_from_voted_pages
    from training.votes_gate import gated_validator, vote_agreement, vote_gate

    cfg = cfg or CycleConfig()
    report = CycleReport()
    t_start = time.perf_counter()
    family = Family.load(family_root)
    names = cfg.members or family.names
    run = await db.start_training_run("retrain", config={"cycle": _jsonable(cfg), "members": names})
    report.training_run_id = run.id
    try:
        # 1. Export: every live vote, with the colorings the voter saw beside it.
        rows = await db.voted_pages(cfg.guild_id)
        prefs = preferences_from_voted_pages(rows)
        report.votes, report.pairs, report.pages = prefs.votes, len(prefs.pairs), prefs.pages
        if not prefs.pairs:
            raise ValueError("no votes to learn from")
        coloring_sha: dict[int, str] = {}
        coloring_member: dict[int, str] = {}
        page_sha: dict[int, str] = {}
        shown_colorings: dict[tuple[int, str, int], int] = {}  # (page, member, version)
        for row in rows:
            page_sha[row.page_id] = row.page_sha256
            for ref in (row.voted, *row.others):
                coloring_sha[ref.coloring_id] = ref.sha256
                coloring_member[ref.coloring_id] = ref.member
                params = ref.parameters or {}
                if params.get("seed") is None and params.get("strength", 1.0) == 1.0:
                    shown_colorings[(row.page_id, ref.member, ref.version)] = ref.coloring_id
        store = db.store
        if store is None:
            raise FileNotFoundError("the votes' pages and colorings are read from the "
                                    "database's image store, and it has none")

        def load_images() -> tuple[dict[int, Image.Image], dict[int, Image.Image]]:
            pages = {pid: _image(store.get(sha)) for pid, sha in page_sha.items()}
            cols = {cid: _image(store.get(sha)) for cid, sha in coloring_sha.items()}
            return pages, cols

        page_images, coloring_images = await asyncio.to_thread(load_images)
        report.seconds["export"] = round(time.perf_counter() - t_start, 1)

        # 2. Judge, trained on all but the held-out pages. Pages are held out by group:
        # the same picture posted twice (same bytes), or as the caller groups them.
        t0 = time.perf_counter()
        pair_pages = np.array([p.page_id for p in prefs.pairs])
        groups = {pid: (cfg.page_groups or {}).get(pid, page_sha[pid]) for pid in page_sha}
        group_ids = {g: k for k, g in enumerate(sorted(set(groups.values())))}
        pair_groups = np.array([group_ids[groups[pid]] for pid in pair_pages])
        held_groups = split_pages(pair_groups, cfg.heldout_share, cfg.seed)
        heldout = {pid for pid in page_sha if group_ids[groups[pid]] in held_groups}
        report.heldout_pages = sorted(heldout & set(pair_pages.tolist()))
        report.train_pages = sorted(set(page_sha) - heldout)
        used = sorted({c for p in prefs.pairs for c in (p.winner_coloring_id, p.loser_coloring_id)})
        slot = {cid: i for i, cid in enumerate(used)}
        coloring_page = {}
        for p in prefs.pairs:
            coloring_page[p.winner_coloring_id] = p.page_id
            coloring_page[p.loser_coloring_id] = p.page_id
        backbone = base_backbone(cfg.backbone_dir) if cfg.judge != "small" else None
        if cfg.judge == "backbone" and backbone is None:
            raise ValueError(f"no backbone for the judge in {cfg.backbone_dir or 'training/base'}")

        def build_and_train():
            size = cfg.backbone_judge_size if backbone is not None else cfg.judge_size
            inputs = torch.stack(
                [
                    judge_inputs(page_images[coloring_page[c]], coloring_images[c], size,
                                 letterbox_pages=backbone is not None)
                    for c in used
                ]
            )
            data = PairData(
                inputs,
                np.array([slot[p.winner_coloring_id] for p in prefs.pairs]),
                np.array([slot[p.loser_coloring_id] for p in prefs.pairs]),
                pair_groups,  # splits (held out, validation) go by group, not by page
            )
            if backbone is not None:
                net, net_cfg = backbone
                return train_backbone_judge(
                    data, net, BackboneJudgeConfig(size=size, backbone=net_cfg),
                    JudgeTrainConfig(steps=cfg.judge_steps, lr=1e-2, weight_decay=1e-3,
                                     seed=cfg.seed),
                    heldout_pages=held_groups,
                )
            return train_judge(
                data,
                JudgeConfig(size=cfg.judge_size),
                JudgeTrainConfig(steps=cfg.judge_steps, seed=cfg.seed),
                heldout_pages=held_groups,
            )

        judged = await asyncio.to_thread(build_and_train)
        judge = judged.judge
        report.judge = judged.metrics()
        report.judge["kind"] = "backbone" if backbone is not None else "small"
        if getattr(judge, "chosen_decay", None) is not None:
            report.judge["decay"] = judge.chosen_decay
        if judge_dir is not None:
            save_judge(judge, Path(judge_dir), judged.metrics())
        report.seconds["judge"] = round(time.perf_counter() - t0, 1)
        log.info("judge: %s", report.judge)

        # The judge's board: every two colorings shown on each voted page, compared by
        # the judge's scores (also the pairs no vote shows).
        judged_pairs = _judged_pairs(used, judged.scores, coloring_page, coloring_member)
        board = head_to_head_leaderboard(judged_pairs, rounds=200, seed=cfg.seed)
        report.judge_board = {
            "rows": [r.to_dict() for r in board],
            "pages": len({p.page_id for p in judged_pairs}),
            "judge_heldout_accuracy": report.judge.get("heldout_accuracy"),
        }

        # Per (page, losing member): the coloring that beat it most often.
        train_set = set(report.train_pages)
        train_pairs = [p for p in prefs.pairs if p.page_id in train_set]
        targets = winning_targets(train_pairs, lambda cid: coloring_member[cid])
        gate_ids = report.heldout_pages[: cfg.gate_pages]
        gate_images = [page_images[pid] for pid in gate_ids]
        gate_votes = [
            [(coloring_images[p.winner_coloring_id], coloring_images[p.loser_coloring_id])
             for p in prefs.pairs if p.page_id == pid]
            for pid in gate_ids
        ]
        pref_examples: PreferenceExamples | None = None

        # 3-5. Each member: tune, save, evaluate, gate, promote or keep.
        for name in names:
            t0 = time.perf_counter()
            family = Family.load(family_root)
            parent = family.get(name)
            outcome = MemberOutcome(member=name, parent_version=parent.version)
            await db.ensure_member_version(
                name, parent.version, weights_sha256=parent.weights_sha256 or None
            )
            winners = {
                (pid, m): coloring_images[cid] for (pid, m), cid in targets.items() if m == name
            }
            parent_net = family.network(name)
            method = cfg.method
            if method == "auto":
                method = "dpo" if tunes_by_likelihood(parent_net) else "target"
            outcome.method = method
            if method == "dpo" and pref_examples is None:
                pref_examples = await asyncio.to_thread(
                    preference_examples, train_pairs, page_images, coloring_images,
                    cfg.tune.size)

            def fine_tune(name=name, parent_net=parent_net, winners=winners, method=method,
                          pref_examples=pref_examples):
                if method == "dpo":
                    assert pref_examples is not None
                    return preference_tune_member(parent_net, pref_examples, cfg.tune)
                examples = member_examples(
                    name, report.train_pages, page_images, winners, cfg.finetune.size
                )
                return finetune_member(parent_net, examples, judge, cfg.finetune)

            tuned = await asyncio.to_thread(fine_tune)
            outcome.finetune = tuned.summary()
            version = Registry(family_root).next_version(name)
            entry = save_candidate(
                family,
                name,
                tuned.net,
                version,
                {"retrain_run": run.id, "votes": report.votes, "judge": report.judge,
                 "method": method},
            )
            outcome.version = version

            def check(family=family, entry=entry, parent=parent):
                cand_eval = evaluate_version(family, entry, cfg.datasets_root, cfg.eval_pages)
                parent_eval = (
                    evaluate_version(family, parent, cfg.datasets_root, cfg.eval_pages)
                    if cand_eval is not None
                    else None
                )
                cand_cols = color_with(family, entry, gate_images)
                # The parent's colorings are the ones people were shown, where they were.
                key = (parent.name, parent.version)
                shown = [shown_colorings.get((pid, *key)) for pid in gate_ids]
                parent_cols = (
                    [coloring_images[c] for c in shown] if all(c is not None for c in shown)
                    else color_with(family, parent, gate_images)
                )
                return vote_gate(
                    judge_pages(judge, gate_images, cand_cols),
                    judge_pages(judge, gate_images, parent_cols),
                    vote_agreement(cand_cols, gate_votes),
                    vote_agreement(parent_cols, gate_votes),
                    parent_eval,
                    cand_eval,
                    cfg.gate,
                    pairs=sum(len(v) for v in gate_votes),
                )

            decision = await asyncio.to_thread(check)
            outcome.gate = decision.to_dict()
            await db.add_member_version(
                name,
                version=version,
                parent_version=parent.version,
                weights_sha256=entry.weights_sha256,
                training_run_id=run.id,
                evaluation={
                    "gate": decision.to_dict(),
                    "finetune": outcome.finetune,
                    "method": method,
                },
            )
            refused = None
            if decision.promote and cfg.promote:
                try:
                    await promote(
                        Registry(family_root, validator=gated_validator(decision)), db, name,
                        version, reason=decision.reason, workers=workers,
                    )
                    outcome.promoted = True
                except PromotionRefused as exc:
                    refused = str(exc)
                    await db.keep_unpromoted(name, version, refused)
            else:
                reason = decision.reason if not decision.promote else "promotion disabled"
                await db.keep_unpromoted(name, version, reason)
            outcome.reason = refused or decision.reason
            outcome.seconds = round(time.perf_counter() - t0, 1)
            report.members.append(outcome)
            log.info(
                "%s v%s: %s (%s)",
                name,
                version,
                "PROMOTED" if outcome.promoted else "kept",
                decision.reason,
            )
        report.seconds["total"] = round(time.perf_counter() - t_start, 1)
        await db.finish_training_run(run.id, metrics=_jsonable(report.to_dict()))
        if on_finish is not None:
            try:
                told = on_finish(report)
                if asyncio.iscoroutine(told):
                    await told
            except Exception:  # news about a cycle must never undo it
                log.warning("retrain on_finish failed", exc_info=True)
        return report
    except Exception as exc:
        await db.finish_training_run(run.id, error=f"{type(exc).__name__}: {exc}")
        raise


def _judged_pairs(
    used: Sequence[int],
    scores: Sequence[float],
    coloring_page: dict[int, int],
    coloring_member: dict[int, str],
) -> list[Preference]:
    """Every two colorings of a page by different members, the judge's higher score
    winning (ties: no pair); a pair's group is its page (a bootstrap resamples pages)."""
    from training.votes import Preference

    by_page: dict[int, list[tuple[int, float]]] = {}
    for cid, score in zip(used, scores, strict=True):
        by_page.setdefault(coloring_page[cid], []).append((cid, float(score)))
    out = []
    for pid, cols in sorted(by_page.items()):
        for (a, sa), (b, sb) in itertools.combinations(cols, 2):
            if sa == sb or coloring_member[a] == coloring_member[b]:
                continue
            (w, lo) = (a, b) if sa > sb else (b, a)
            out.append(Preference(pid, coloring_member[w], coloring_member[lo], w, lo, group=pid))
    return out


def _jsonable(obj: Any) -> Any:
    import json
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    return json.loads(json.dumps(obj, default=str))

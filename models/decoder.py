"""One color per region, chosen from the region's whole a/b distribution.

A member with a classification head predicts, per pixel, a distribution over a/b cells.
The old fill took each region's median of per-pixel annealed means: averaging a
distribution with several peaks (a ball may be red or blue) lands between them, in
brown. Here a region decides from all of its pixels' evidence at once:

- **mode of the product**: the region's score for cell q is the mean over its pixels of
  log p(q) (the log of the product of the pixels' distributions, per pixel so that big
  and small regions are on one scale); the best cell is the color every pixel finds
  least unlikely, and it is one of the peaks, never a blend of two. The scores are the
  region's mean *logits*: log p(q) up to each pixel's normalizer, which is the same for
  every cell of a region, and every decision below compares cells within a region (a
  log-softmax over every pixel cost ~14 ms a member and changed no choice);
- **logit adjustment**: the training data's cell frequencies (`prior`) favour paper
  white and a few common colors; subtracting `prior_weight * log prior(q)` lets a cell
  that is rare overall win where the page's evidence points to it. Paper gray gets the
  median chromatic correction, so confident white stays white;
- **neighbours differ**: regions are decided largest first; a region whose best color
  is nearly the color of a neighbour already decided takes its own next-best mode when
  that is within `diversity_margin` of its best (the distribution allows it);
- **variety on request**: with a `seed`, Gumbel noise of scale `variety` on the scores
  picks another plausible coloring, the same one for the same seed.

Everything here is a few small tensors per page: (regions, cells) scores, not pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from models.regions import RegionSamples

if TYPE_CHECKING:
    from models.memory import RegionRecall

# Two a/b cells closer than this (network scale, ab/110) count as "the same color" for
# the neighbour rule: ~1.5 cells of a 15-bin grid, about 20 a/b units.
_SAME_COLOR = 0.2
# Share of uniform in the prior the adjustment uses (the training's rebalancing mix).
_PRIOR_MIX = 0.5
# a/b cells this close to gray (network scale) are paper / gray, not a color choice.
_NEUTRAL = 0.07


@dataclass(frozen=True)
class DecoderOptions:
    prior_weight: float = 0.5  # strength of the logit adjustment (0 = none)
    diversity_margin: float = 0.4  # nats of mean log-probability a region may give up
    # to differ from a neighbour
    seed: int | None = None  # None: deterministic; an int: another plausible coloring
    variety: float = 0.5  # scale of the Gumbel noise used with a seed
    hedge: float = 0.0  # chroma x (confidence in the chosen color) ** hedge; 0 = full
    # chroma always. A vivid wrong color costs more than a pale one.
    memory_weight: float = 1.0  # how much the member's memory counts beside its network
    gray_penalty: float = 0.0  # nats taken from gray cells inside the drawing: a member
    # that paints rather than shades picks a color (or leaves paper white) there
    memory_lightness: float = 1.0  # how far a region's L moves from the network's
    # toward the lightness the recalled pages had in the chosen color (0 = not at all):
    # on noto val, 1 took every member's CIEDE2000 down 2-6 %


# What a member may set for itself in its manifest (`extra.decoder`).
MEMBER_SETTINGS = ("prior_weight", "diversity_margin", "variety", "hedge", "memory_weight",
                   "gray_penalty", "memory_lightness")
# The floor under a cell no recalled page had: a vote of zero must not veto a color.
_VOTE_FLOOR = 0.02


def region_log_scores(logits: torch.Tensor, samples: RegionSamples) -> torch.Tensor:
    """Mean logit of each cell over each region: (Q, h, w) -> (K+1, Q); the mean
    log-probability up to a constant per region (the same for log-probabilities in).

    Row 0 (lines) and regions without a sample are zero.
    """
    q = logits.shape[0]
    n_ids = samples.counts.numel()
    scores = torch.zeros(n_ids, q, dtype=torch.float32)
    if samples.index.numel() == 0:
        return scores
    # Samples come sorted by region: gather each cell's log-probabilities at the samples
    # (Q, N), then sum each region's run of columns.
    counts = samples.counts.long()
    gathered = torch.index_select(logits.reshape(q, -1).float(), 1, samples.index.long())
    lengths = counts.expand(q, -1).contiguous()
    scores = torch.segment_reduce(gathered, "sum", lengths=lengths, axis=1).T  # (K+1, Q)
    return scores / counts.clamp_min(1)[:, None].float()


def with_memory(scores: torch.Tensor, votes: torch.Tensor, weight: float) -> torch.Tensor:
    """Region scores plus the memory's opinion: `weight` x log(share of recalled votes)."""
    return scores + weight * torch.log(votes + _VOTE_FLOOR)


def adjusted_scores(
    scores: torch.Tensor, prior: torch.Tensor | None, weight: float
) -> torch.Tensor:
    """Region scores with the logit adjustment applied: (K+1, Q)."""
    if prior is None or weight == 0:
        return scores
    q = prior.numel()
    # Mixed with uniform like the training's class rebalancing: a cell never seen in
    # training gets a bounded boost, not an unbounded one.
    log_prior = ((1.0 - _PRIOR_MIX) * prior + _PRIOR_MIX / q).log()
    return scores - weight * log_prior[None, :]


def penalize_gray(adjusted: torch.Tensor, centers: torch.Tensor, inside: torch.Tensor,
                  penalty: float) -> torch.Tensor:
    """`adjusted` (K+1, Q) with `penalty` nats taken from the gray cells of the regions
    `inside` (K+1,) bool (the drawing, not the paper around it)."""
    if penalty <= 0:
        return adjusted
    gray = (centers.norm(dim=1) < _NEUTRAL).float()  # (Q,)
    penalized: torch.Tensor = adjusted - penalty * inside.float()[:, None] * gray[None, :]
    return penalized


def choose_cells(
    adjusted: torch.Tensor,
    sizes: torch.Tensor,
    neighbours: list[set[int]],
    centers: torch.Tensor,
    options: DecoderOptions | None = None,
) -> torch.Tensor:
    """The a/b cell of every region: (K+1,) long (row 0 unused).

    `adjusted` (K+1, Q) region scores (`adjusted_scores`), `sizes` (K+1,) samples per
    region (0 = no evidence: such regions keep cell 0 and are colored per pixel).
    """
    options = options or DecoderOptions()
    if options.seed is not None and options.variety > 0:
        gen = torch.Generator().manual_seed(int(options.seed))
        uniform = torch.rand(adjusted.shape, generator=gen).clamp(1e-9, 1 - 1e-9)
        adjusted = adjusted - options.variety * torch.log(-torch.log(uniform))
    n_ids = adjusted.shape[0]
    # Plain Python over numpy rows: a region's choice is a few comparisons, and torch's
    # per-call overhead made this loop ~18 ms a member.
    scores = adjusted.numpy()
    ranking = torch.argsort(adjusted, dim=1, descending=True)[:, :8].numpy()  # (K+1, 8)
    neutral = (centers.norm(dim=1) < _NEUTRAL).tolist()
    close = (torch.cdist(centers, centers) < _SAME_COLOR).numpy()  # (Q, Q) "same color"
    counts = sizes.tolist()
    cells = [0] * n_ids
    decided = [False] * n_ids
    order = torch.argsort(sizes, descending=True, stable=True).tolist()
    for region in order:
        if region == 0 or counts[region] == 0:
            continue
        best = int(ranking[region, 0])
        choice = best
        taken = [cells[j] for j in neighbours[region] if decided[j]]
        if taken and not neutral[best]:
            row = scores[region]
            floor = float(row[best]) - options.diversity_margin
            for cell in ranking[region].tolist():
                if float(row[cell]) < floor:
                    break
                if neutral[cell]:
                    continue  # giving up a color for paper is not what "differ" means
                if not close[cell, taken].any():
                    choice = cell
                    break
        cells[region] = choice
        decided[region] = True
    return torch.tensor(cells, dtype=torch.long)


def region_confidence(
    adjusted: torch.Tensor, cells: torch.Tensor, centers: torch.Tensor
) -> torch.Tensor:
    """How sure each region is of its chosen color: (K+1,) in [0, 1].

    The probability, under the region's pooled distribution softmax(adjusted scores),
    of the cells within "the same color" of the chosen one.
    """
    probs = torch.softmax(adjusted, dim=1)  # (K+1, Q)
    near = torch.cdist(centers[cells], centers) < _SAME_COLOR  # (K+1, Q)
    return (probs * near).sum(dim=1).clamp(0.0, 1.0)


# The recalled share of a region's chosen color at which its recalled lightness is
# trusted fully; below it, in proportion.
_TRUSTED_SHARE = 0.2


def recalled_lightness(
    recall: RegionRecall, cells: torch.Tensor, centers: torch.Tensor,
    network_l: torch.Tensor, weight: float, paper: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each region's L* (K+1,), moved from the network's `network_l` toward how light
    the recalled pages were where they had the region's chosen color (cells within
    "the same color" of it), by `weight` x the share of the region's recalled pixels
    that had that color (full trust from `_TRUSTED_SHARE` up). A region whose color no
    recalled page had keeps the network's L, and so does a gray region of the `paper`
    (K+1,) bool around the drawing: remembered grays are paper and outlines alike, and
    their mean L painted Tux Paint pages' paper gray."""
    if weight <= 0:
        return network_l
    near = (torch.cdist(centers[cells], centers) < _SAME_COLOR).float()  # (K+1, Q)
    mass = (recall.mass * near).sum(dim=1)
    light = (recall.light * near).sum(dim=1) / mass.clamp_min(1e-9)
    trust = weight * (mass / _TRUSTED_SHARE).clamp(0.0, 1.0)
    moved: torch.Tensor = network_l + trust * (light - network_l)
    use = mass > 1e-6
    if paper is not None:
        use &= ~(paper & (centers[cells].norm(dim=1) < _NEUTRAL))
    return torch.where(use, moved, network_l)

"""The judge: a small reward network that scores a (page, coloring) pair.

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
`size`×`size` inside, so any H, W works.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from models.colorspace import normalize_lab, rgb_to_lab
from training.votes import Preference, PreferenceSet, member_key

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


def judge_inputs(page: Image.Image, coloring: Image.Image, size: int) -> torch.Tensor:
    """(4, size, size): page L and coloring LAB in network scale, for `Judge`."""
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
    judge: Judge
    train_accuracy: float
    heldout_accuracy: float
    heldout_pairs: int
    train_pairs: int
    heldout_pages: list[int] = field(default_factory=list)
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)

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
def score_inputs(judge: Judge, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    judge.eval()
    out = [judge(x[:, :1], x[:, 1:]) for x in inputs.split(batch)]
    return torch.cat(out) if out else torch.zeros(0)


def pair_accuracy(scores: torch.Tensor, winners: np.ndarray, losers: np.ndarray) -> float:
    if len(winners) == 0:
        return float("nan")
    w, lo = torch.as_tensor(winners), torch.as_tensor(losers)
    return float((scores[w] > scores[lo]).float().mean())


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
    ho_w, ho_l = data.winners[held], data.losers[held]

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
    if len(scores) > 1:
        judge.score_scale.fill_(max(float(scores.std()), 1e-3))
    return JudgeResult(
        judge=judge,
        train_accuracy=pair_accuracy(scores, tr_w, tr_l),
        heldout_accuracy=pair_accuracy(scores, ho_w, ho_l),
        heldout_pairs=int(held.sum()),
        train_pairs=int((~held).sum()),
        heldout_pages=sorted(heldout_pages),
        seconds=time.perf_counter() - t0,
        losses=losses,
    )


def save_judge(judge: Judge, folder: str | Path, metrics: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in judge.state_dict().items()}
    save_file(state, str(folder / "judge.safetensors"))
    info = {"config": judge.cfg.to_dict(), "metrics": metrics or {}}
    (folder / "judge.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return folder


def load_judge(folder: str | Path) -> Judge:
    folder = Path(folder)
    info = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
    judge = Judge(JudgeConfig(**info["config"]))
    judge.load_state_dict(load_file(str(folder / "judge.safetensors")))
    return judge.eval()


@torch.no_grad()
def score_colorings(judge: Judge, page: Image.Image, colorings: list[Image.Image]) -> list[float]:
    """Judge scores of several colorings of one page (higher is better)."""
    if not colorings:
        return []
    x = torch.stack([judge_inputs(page, c, judge.cfg.size) for c in colorings])
    return score_inputs(judge, x).tolist()


# --- the judge's view of the voted pages ----------------------------------------------


def judged_preferences(
    voted: Iterable[Any],
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
    pages: dict[int, tuple[str, dict[int, Any]]] = {}
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
    db: Any, judge: Judge, guild_id: int | None = None, *, by_version: bool = False
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


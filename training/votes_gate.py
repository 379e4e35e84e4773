"""The promotion gate for candidates tuned on votes: the judge AND a check without it.

A judge trained on a few thousand noisy votes can be fooled, and a candidate tuned
towards what the judge likes can fool it more (the judge once preferred a candidate on
100 % of pages that was no closer to anything people wanted). So a candidate is
promoted only if all of these hold:

1. **judge**: on held-out voted pages, the judge prefers the candidate's coloring to
   its parent's on more than half the pages by a margin;
2. **votes, without the judge**: on the same held-out pages, the candidate's coloring
   agrees with the held-out votes more often than its parent's did. A vote pair
   (winner, loser) agrees with a coloring when the coloring is closer (mean CIEDE2000)
   to the winner than to the loser: the member moved towards what people picked and
   away from what they passed over, in the colors people actually see;
3. **truth**, where the member's own collection has a test split: its mean CIEDE2000
   to the true colors does not rise beyond `ciede2000_tolerance`, and its lines stay
   dark.

The registry (`models.registry.promote`) then runs its own validator (loads, finite,
not flat, lines visible). `gated_validator` puts this decision in front of that
validator, so the registry itself refuses a vote candidate the gate did not pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.promotion import judge_win_rate  # one definition: ties count half

if TYPE_CHECKING:
    from PIL import Image

    from models.registry import FamilyMember, Validator


@dataclass
class VoteGateConfig:
    judge_margin: float = 0.05  # the judge must prefer the candidate on > 0.5 + margin
    agreement_margin: float = 0.02  # vote agreement must beat the parent's by this much
    ciede2000_tolerance: float = 0.0  # allowed rise of mean CIEDE2000 on its test split
    lines_tolerance: float = 0.02  # allowed drop of the share of line pixels kept dark
    min_pages: int = 8  # fewer held-out pages than this: no decision, kept


@dataclass
class VoteGateDecision:
    promote: bool
    reason: str
    judge_win_rate: float  # share of held-out pages where the judge prefers the candidate
    pages: int
    agreement: dict[str, float] = field(default_factory=dict)  # parent/candidate/pairs
    evaluation: dict[str, Any] = field(default_factory=dict)  # parent/candidate figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vote_agreement(
    colorings: Sequence[Image.Image],
    pairs: Sequence[Sequence[tuple[Image.Image, Image.Image]]],
) -> float:
    """Share of vote pairs whose winner is closer (mean CIEDE2000) to the member's
    coloring than the loser is; ties count half. `pairs[k]` are the (winner, loser)
    colorings of page k's held-out votes, `colorings[k]` the member's coloring of it."""
    from training.simulate import truth_distance

    agree = total = 0.0
    for coloring, page_pairs in zip(colorings, pairs, strict=True):
        near: dict[int, float] = {}  # one distance per distinct shown coloring
        for won, lost in page_pairs:
            for img in (won, lost):
                if id(img) not in near:
                    near[id(img)] = truth_distance(img, coloring)
            dw, dl = near[id(won)], near[id(lost)]
            agree += 1.0 if dw < dl else 0.5 if dw == dl else 0.0
            total += 1.0
    return agree / total if total else 0.0


def vote_gate(
    candidate_scores: Sequence[float],
    parent_scores: Sequence[float],
    candidate_agreement: float,
    parent_agreement: float,
    parent_eval: dict[str, Any] | None,
    candidate_eval: dict[str, Any] | None,
    cfg: VoteGateConfig | None = None,
    pairs: int = 0,
) -> VoteGateDecision:
    """Decide on one candidate (see the module's three conditions)."""
    cfg = cfg or VoteGateConfig()
    n = len(candidate_scores)
    rate = judge_win_rate(candidate_scores, parent_scores)
    agreement = {"parent": round(parent_agreement, 4), "candidate": round(candidate_agreement, 4),
                 "pairs": pairs}
    evaluation = {"parent": parent_eval, "candidate": candidate_eval}

    def kept(reason: str) -> VoteGateDecision:
        return VoteGateDecision(False, reason, rate, n, agreement, evaluation)

    if n < cfg.min_pages:
        return kept(f"only {n} held-out pages (< {cfg.min_pages}): no decision")
    needed = 0.5 + cfg.judge_margin
    if rate <= needed:
        return kept(f"judge prefers it on {rate:.0%} of {n} held-out pages, "
                    f"needs more than {needed:.0%}")
    if candidate_agreement < parent_agreement + cfg.agreement_margin:
        return kept(
            f"the judge prefers it ({rate:.0%} of {n} pages), but it agrees with "
            f"{candidate_agreement:.1%} of held-out vote pairs against its parent's "
            f"{parent_agreement:.1%} (needs +{cfg.agreement_margin:.0%}): the judge alone "
            "may not promote"
        )
    checks = [f"votes agree {parent_agreement:.1%} -> {candidate_agreement:.1%}"]
    pe, ce = parent_eval or {}, candidate_eval or {}
    if pe.get("ciede2000") is not None and ce.get("ciede2000") is not None:
        rise = ce["ciede2000"] - pe["ciede2000"]
        if rise > cfg.ciede2000_tolerance:
            return kept(f"evaluation regressed: CIEDE2000 {pe['ciede2000']:.2f} -> "
                        f"{ce['ciede2000']:.2f} on its test split")
        checks.append(f"CIEDE2000 {pe['ciede2000']:.2f} -> {ce['ciede2000']:.2f}")
    else:
        checks.append("no test split: truth not checked")
    if pe.get("lines_kept_dark") is not None and ce.get("lines_kept_dark") is not None:
        if pe["lines_kept_dark"] - ce["lines_kept_dark"] > cfg.lines_tolerance:
            return kept(f"evaluation regressed: lines kept dark {pe['lines_kept_dark']:.3f} "
                        f"-> {ce['lines_kept_dark']:.3f}")
    return VoteGateDecision(
        True, f"judge prefers it on {rate:.0%} of {n} held-out pages; " + "; ".join(checks),
        rate, n, agreement, evaluation,
    )


def gated_validator(decision: VoteGateDecision, then: Validator | None = None) -> Validator:
    """A registry validator that refuses unless `decision` passed, then runs `then`
    (default: `models.validate.validate_candidate`, the check every promotion runs)."""

    def validate(root: Path, parent: FamilyMember, candidate: FamilyMember) -> str | None:
        if not decision.promote:
            return f"the vote gate kept it: {decision.reason}"
        if then is not None:
            return then(root, parent, candidate)
        from models.validate import validate_candidate

        return validate_candidate(root, parent, candidate)

    return validate

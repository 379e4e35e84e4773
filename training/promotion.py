"""The promotion gate, and fine-tuned networks saved as candidate versions.

Training only produces candidates: `save_candidate` hands a network to the family
registry (`models.registry`), which keeps every version under `versions/` and owns
promote / rollback (validated, in step with the database, workers told).

The gate: a candidate is promoted only if, on pages held out from its fine-tuning,
the judge prefers its colorings to its parent's on more than half the pages by a
margin, and its evaluation on its own collection's test split does not regress beyond
a tolerance. Otherwise it stays, unpromoted, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from models.registry import FamilyMember, Registry

if TYPE_CHECKING:
    from torch import nn

    from models.family import Family


# --- the gate ----------------------------------------------------------------------------


@dataclass
class GateConfig:
    margin: float = 0.05  # the judge must prefer the candidate on > 0.5 + margin of pages
    # Largest allowed rise of mean CIEDE2000 to the true colors (lower is better).
    ciede2000_tolerance: float = 0.5
    # Largest allowed drop of the share of line pixels kept dark.
    lines_tolerance: float = 0.02
    min_pages: int = 8  # fewer held-out pages than this: no decision, kept unpromoted


@dataclass
class GateDecision:
    promote: bool
    reason: str
    judge_win_rate: float  # share of held-out pages where the judge prefers the candidate
    pages: int
    evaluation: dict[str, Any] = field(default_factory=dict)  # parent/candidate figures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_win_rate(candidate_scores: Sequence[float], parent_scores: Sequence[float]) -> float:
    """Share of pages where the candidate's coloring scores higher (ties count half)."""
    if not candidate_scores:
        return 0.0
    wins = sum(
        1.0 if c > p else 0.5 if c == p else 0.0
        for c, p in zip(candidate_scores, parent_scores, strict=True)
    )
    return wins / len(candidate_scores)


def gate(
    candidate_scores: Sequence[float],
    parent_scores: Sequence[float],
    parent_eval: dict[str, Any] | None,
    candidate_eval: dict[str, Any] | None,
    cfg: GateConfig | None = None,
) -> GateDecision:
    """Decide on one candidate from judge scores of held-out pages and both evaluations.

    `*_eval` hold the evaluation figures (`ciede2000`, `lines_kept_dark`); None or
    missing figures are not checked (the reason says so).
    """
    cfg = cfg or GateConfig()
    n = len(candidate_scores)
    rate = judge_win_rate(candidate_scores, parent_scores)
    evaluation = {"parent": parent_eval, "candidate": candidate_eval}
    if n < cfg.min_pages:
        return GateDecision(
            False, f"only {n} held-out pages (< {cfg.min_pages}): no decision", rate, n, evaluation
        )
    needed = 0.5 + cfg.margin
    if rate <= needed:
        return GateDecision(
            False,
            f"judge prefers it on {rate:.0%} of {n} held-out pages, needs more than {needed:.0%}",
            rate,
            n,
            evaluation,
        )
    checks = []
    pe, ce = parent_eval or {}, candidate_eval or {}
    if pe.get("ciede2000") is not None and ce.get("ciede2000") is not None:
        rise = ce["ciede2000"] - pe["ciede2000"]
        if rise > cfg.ciede2000_tolerance:
            return GateDecision(
                False,
                f"evaluation regressed: CIEDE2000 {pe['ciede2000']:.2f} -> {ce['ciede2000']:.2f}"
                f" (+{rise:.2f} > {cfg.ciede2000_tolerance})",
                rate,
                n,
                evaluation,
            )
        checks.append(f"CIEDE2000 {pe['ciede2000']:.2f} -> {ce['ciede2000']:.2f}")
    if pe.get("lines_kept_dark") is not None and ce.get("lines_kept_dark") is not None:
        drop = pe["lines_kept_dark"] - ce["lines_kept_dark"]
        if drop > cfg.lines_tolerance:
            return GateDecision(
                False,
                f"evaluation regressed: lines kept dark {pe['lines_kept_dark']:.3f} -> "
                f"{ce['lines_kept_dark']:.3f}",
                rate,
                n,
                evaluation,
            )
        checks.append(f"lines dark {ce['lines_kept_dark']:.3f}")
    evaluated = ", ".join(checks) if checks else "no evaluation data: not checked"
    return GateDecision(
        True,
        f"judge prefers it on {rate:.0%} of {n} held-out pages; {evaluated}",
        rate,
        n,
        evaluation,
    )


# --- candidates ---------------------------------------------------------------------------


def save_candidate(
    family: Family, member: str, net: nn.Module, version: int, extra: dict[str, Any]
) -> FamilyMember:
    """Write a fine-tuned network as a new, unpromoted version of `member` (the
    registry keeps it under versions/ until `models.registry.promote` serves it)."""
    from models.family import save_weights

    return Registry(family.root).add_candidate(
        member, version, lambda path: save_weights(net, path), extra
    )

"""The promotion gate, and promote / rollback of member versions.

Every version of a member keeps its weights and its manifest entry side by side in
the family folder, under `versions/`:

    versions/<member>.v<N>.safetensors   the weights (fp16, as the registry stores them)
    versions/<member>.v<N>.json          the member entry that serves them (+ gate facts)

Promoting a version copies its entry into `manifest.json` (`Family.save_manifest`
writes a temporary file and renames it: a reloading worker never reads half a
manifest), records the decision in the database, and asks the workers to reload
(they also poll the manifest). Rollback promotes the served version's parent the same
way. The database (`db.Database.promote/rollback/keep_unpromoted`) keeps the history:
parent, evaluation, promoted or not and why.

The gate: a candidate is promoted only if, on pages held out from its fine-tuning,
the judge prefers its colorings to its parent's on more than half the pages by a
margin, and its evaluation on its own collection's test split does not regress beyond
a tolerance. Otherwise it stays, unpromoted, with the reason.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from models.family import Family, FamilyError, FamilyMember, file_sha256

log = logging.getLogger(__name__)

VERSIONS_DIR = "versions"


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


# --- versions on disk --------------------------------------------------------------------


def version_weights_name(member: str, version: int) -> str:
    return f"{VERSIONS_DIR}/{member}.v{version}.safetensors"


def version_entry_path(root: Path, member: str, version: int) -> Path:
    return Path(root) / VERSIONS_DIR / f"{member}.v{version}.json"


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_version_entry(root: Path, entry: FamilyMember) -> Path:
    path = version_entry_path(root, entry.name, entry.version)
    _write_json_atomic(path, entry.to_dict())
    return path


def load_version_entry(root: Path, member: str, version: int) -> FamilyMember:
    path = version_entry_path(root, member, version)
    try:
        return FamilyMember(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise FamilyError(f"no version {version} of {member!r} in {path.parent}") from None


def archive_served(family: Family, member: str) -> FamilyMember:
    """Make sure the served version of `member` is kept under versions/ (to roll back to)."""
    entry = family.get(member)
    path = version_entry_path(family.root, member, entry.version)
    if path.exists():
        return load_version_entry(family.root, member, entry.version)
    kept = replace(entry, weights=version_weights_name(member, entry.version))
    src, dst = family.root / entry.weights, family.root / kept.weights
    if src.resolve() != dst.resolve():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    kept.weights_sha256 = file_sha256(dst)
    save_version_entry(family.root, kept)
    return kept


def next_version(family: Family, member: str) -> int:
    """One past the highest version of `member` kept in the folder."""
    known = [family.get(member).version]
    for p in (family.root / VERSIONS_DIR).glob(f"{member}.v*.json"):
        try:
            known.append(int(p.stem.rsplit(".v", 1)[1]))
        except (IndexError, ValueError):
            continue
    return max(known) + 1


def save_candidate(
    family: Family, member: str, net: Any, version: int, extra: dict[str, Any]
) -> FamilyMember:
    """Write a fine-tuned network as a new, unpromoted version of `member`."""
    from models.family import save_weights

    parent = archive_served(family, member)
    entry = replace(
        parent,
        version=version,
        weights=version_weights_name(member, version),
        extra={**parent.extra, **extra, "parent_version": parent.version},
    )
    entry.weights_sha256 = save_weights(net, family.root / entry.weights)
    save_version_entry(family.root, entry)
    return entry


def candidate_family(family: Family, entry: FamilyMember) -> Family:
    """A family of just this version (same folder), to color or evaluate with it."""
    return Family(family.root, [entry])


def install_version(root: Path, member: str, version: int, reason: str = "") -> FamilyMember:
    """Serve `version` of `member`: its entry goes into the manifest, atomically."""
    family = Family.load(root)
    current = family.get(member)
    if current.version != version:
        archive_served(family, member)
    entry = load_version_entry(family.root, member, version)
    path = family.root / entry.weights
    if not path.exists():
        raise FamilyError(f"{member} v{version}: weights file {path} is missing")
    if entry.weights_sha256 and file_sha256(path) != entry.weights_sha256:
        raise FamilyError(f"{member} v{version}: {path.name} does not match its sha256")
    # The person-facing fields (emoji, description) stay as the family has them now.
    entry = replace(entry, emoji=current.emoji, description=current.description)
    entry.extra = {**entry.extra, "served_reason": reason}
    family.members = [entry if m.name == member else m for m in family.members]
    family.save_manifest()
    return entry


# --- promote / rollback ------------------------------------------------------------------


async def notify_workers(urls: Sequence[str], timeout: float = 30.0) -> dict[str, str]:
    """POST /v1/admin/reload to each worker; url -> "ok" or the error (never raises)."""
    if not urls:
        return {}
    import aiohttp

    out: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        for url in urls:
            try:
                async with http.post(url.rstrip("/") + "/v1/admin/reload") as resp:
                    out[url] = "ok" if resp.status == 200 else f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                out[url] = f"{type(exc).__name__}: {exc}"
    for url, status in out.items():
        if status != "ok":
            log.warning(
                "worker %s did not reload (%s); it picks the manifest up by polling", url, status
            )
    return out


async def promote(
    root: Path,
    member: str,
    version: int,
    *,
    db: Any = None,
    reason: str = "",
    worker_urls: Sequence[str] = (),
) -> FamilyMember:
    """Serve `version` of `member`: manifest, database record, worker reload."""
    before = Family.load(root).get(member)
    entry = install_version(root, member, version, reason or "promoted")
    if db is not None:
        from db import NotFound

        try:
            await db.ensure_member_version(
                member, before.version, weights_sha256=before.weights_sha256 or None
            )
            try:
                await db.get_member_version(member, version)
            except NotFound:
                # A version made outside a retrain cycle: record it with its parent.
                await db.add_member_version(
                    member,
                    version=version,
                    parent_version=int(entry.extra.get("parent_version", before.version)),
                    weights_sha256=entry.weights_sha256 or None,
                )
            await db.promote(member, version, reason=reason)
        except Exception:
            # Keep the family and the record in step: put the old version back.
            install_version(root, member, before.version, "promotion failed")
            raise
    await notify_workers(worker_urls)
    return entry


async def rollback(
    root: Path,
    member: str,
    *,
    db: Any = None,
    reason: str = "rolled back",
    worker_urls: Sequence[str] = (),
) -> FamilyMember:
    """Serve the parent of the member's served version again; returns its entry."""
    current = Family.load(root).get(member)
    parent_version = current.extra.get("parent_version")
    if db is not None:
        parent = await db.rollback(member, reason=reason)
        parent_version = parent.version
    if parent_version is None:
        raise FamilyError(f"{member} v{current.version} has no parent to roll back to")
    entry = install_version(root, member, int(parent_version), f"rollback of v{current.version}")
    await notify_workers(worker_urls)
    return entry

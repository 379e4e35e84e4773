"""`colorbot evaluate`: how close a member's colorings are to the true colors.

Each test page is colored through the real pipeline (`models.pipeline.Colorizer`, the
options a user gets by default), and compared with the picture it was made from:

- **CIEDE2000**: mean `skimage.color.deltaE_ciede2000` per pixel to the true colors;
- **colorfulness**: Hasler & Süsstrunk (2003), signed form, on 0..255 sRGB:
  rg = R - G, yb = (R + G) / 2 - B, M = sqrt(sd(rg)^2 + sd(yb)^2)
  + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2); a gray page scores 0;
- **lines kept dark**: of the page's line pixels (page L* < 50), the share whose
  coloring is still dark (L* < 60).

The same figures for two baselines: the **uncolored** page, and **A/B-only** — the
member's own coloring with the page's L put back (the original write-up's approach:
on white paper no a/b is visible, so this shows what predicting lightness buys).
`network (no fill)` is the member without region fill (per-pixel colors under the
lines), and `true colors` gives the colorfulness of the real pictures for scale.

With several members, the mean pairwise CIEDE2000 between their colorings of the same
pages says whether the family members really color differently.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

if TYPE_CHECKING:
    from models.family import Family

LINE_L = 50.0  # page pixels darker than this are lines
DARK_L = 60.0  # a line pixel is "kept dark" when its coloring is darker than this

ROWS = ("member", "network (no fill)", "A/B-only", "uncolored", "true colors")


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler–Süsstrunk colorfulness (signed rg/yb) of an (H, W, 3) uint8 image."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def mean_ciede2000(lab_a: np.ndarray, lab_b: np.ndarray) -> float:
    return float(deltaE_ciede2000(lab_a, lab_b).mean())


def lines_kept_dark(page_l: np.ndarray, out_l: np.ndarray) -> float:
    """Share of the page's line pixels that stay dark in the coloring (1.0: no lines)."""
    lines = page_l < LINE_L
    if not lines.any():
        return 1.0
    return float((out_l[lines] < DARK_L).mean())


def ab_only(coloring_lab: np.ndarray, page_l: np.ndarray) -> np.ndarray:
    """The coloring's a/b with the page's own L (LAB (H, W, 3) in, RGB uint8 out).

    Converted like the pipeline converts (out-of-gamut colors lose chroma, keeping hue
    and L), not by per-channel clipping, which would darken white paper into pastel.
    """
    import torch

    from models.pipeline import lab_to_rgb8

    lab = coloring_lab.astype(np.float32).copy()
    lab[..., 0] = page_l
    h, w = page_l.shape
    rgb = lab_to_rgb8(torch.from_numpy(lab.reshape(-1, 3).T.copy()))  # (N, 3)
    return rgb.numpy().reshape(h, w, 3)


@dataclass
class Scores:
    """Sums of per-page figures; `means()` gives the table row."""

    ciede2000: list[float] = field(default_factory=list)
    colorfulness: list[float] = field(default_factory=list)
    lines_dark: list[float] = field(default_factory=list)

    def add(self, rgb: np.ndarray, truth_lab: np.ndarray | None, page_l: np.ndarray,
            lab: np.ndarray | None = None) -> np.ndarray:
        lab = rgb2lab(rgb) if lab is None else lab
        if truth_lab is not None:
            self.ciede2000.append(mean_ciede2000(lab, truth_lab))
        self.colorfulness.append(colorfulness(rgb))
        self.lines_dark.append(lines_kept_dark(page_l, lab[..., 0]))
        return lab

    def means(self) -> dict[str, float | None]:
        def m(v: list[float]) -> float | None:
            return float(np.mean(v)) if v else None

        return {"ciede2000": m(self.ciede2000), "colorfulness": m(self.colorfulness),
                "lines_kept_dark": m(self.lines_dark)}


def default_dataset(member: Any) -> Path:
    """Where a member's dataset is by default: $COLORBOT_DATASETS/<collection>."""
    from colorbot.settings import Settings

    collection = (member.extra or {}).get("collection") or member.name
    return Settings.from_env().datasets_root / str(collection)


def _load_rows(dataset: Path, split: str, limit: int) -> list[dict[str, Any]]:
    from training.train import read_manifest

    rows = read_manifest(dataset, split)
    if limit:
        rows = rows[:limit]
    if not rows:
        raise ValueError(f"{dataset}: no pairs in split {split!r}")
    return rows


def evaluate(family: Family, members: list[str], dataset: str | Path, split: str = "test",
             limit: int = 0, batch: int = 8, device: str | None = None,
             raw: bool = True) -> dict[str, Any]:
    """Evaluate `members` of `family` on one dataset split; returns the JSON report.

    report["members"][name][row] = {"ciede2000", "colorfulness", "lines_kept_dark"} for
    each row of ROWS (per kind too, under report["members"][name]["by_kind"]), and with
    two or more members report["pairwise"] = {"a|b": mean CIEDE2000, ..., "mean": ...}.
    """
    from models.pipeline import ColorizeOptions, Colorizer

    dataset = Path(dataset)
    rows = _load_rows(dataset, split, limit)
    colorizer = Colorizer(family, device=device)
    options, no_fill = ColorizeOptions(), ColorizeOptions(fill=False)
    scores: dict[str, dict[str, dict[str, Scores]]] = {
        m: {} for m in members}  # member -> kind -> row -> Scores
    pair_scores: dict[str, list[float]] = {f"{a}|{b}": [] for a, b in
                                           itertools.combinations(members, 2)}
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        pages = [Image.open(dataset / r["page"]).convert("RGB") for r in chunk]
        truths = [np.asarray(Image.open(dataset / r["color"]).convert("RGB")) for r in chunk]
        prepared = [colorizer.prepare(p, options) for p in pages]
        prepared_raw = [colorizer.prepare(p, no_fill) for p in pages] if raw else []
        outputs = {m: colorizer.run_member(m, prepared) for m in members}
        outputs_raw = {m: colorizer.run_member(m, prepared_raw) for m in members} if raw else {}
        for i, row in enumerate(chunk):
            page_rgb = np.asarray(pages[i])
            page_l = rgb2lab(page_rgb)[..., 0]
            truth_lab = rgb2lab(truths[i])
            kind = row.get("kind") or prepared[i].kind
            member_labs = {}
            for m in members:
                table = scores[m].setdefault(kind, {r: Scores() for r in ROWS})
                out = np.asarray(outputs[m][i].convert("RGB"))
                lab = table["member"].add(out, truth_lab, page_l)
                member_labs[m] = lab
                if raw:
                    table["network (no fill)"].add(
                        np.asarray(outputs_raw[m][i].convert("RGB")), truth_lab, page_l)
                table["A/B-only"].add(ab_only(lab, page_l), truth_lab, page_l)
                table["uncolored"].add(page_rgb, truth_lab, page_l)
                table["true colors"].add(truths[i], None, page_l, truth_lab)
            for a, b in itertools.combinations(members, 2):
                pair_scores[f"{a}|{b}"].append(mean_ciede2000(member_labs[a], member_labs[b]))

    report: dict[str, Any] = {"dataset": str(dataset), "split": split, "pages": len(rows),
                              "options": "pipeline defaults (ColorizeOptions())",
                              "members": {}}
    for m in members:
        merged = {r: Scores() for r in ROWS}
        for table in scores[m].values():
            for r in ROWS:
                for name in ("ciede2000", "colorfulness", "lines_dark"):
                    getattr(merged[r], name).extend(getattr(table[r], name))
        entry: dict[str, Any] = {r: merged[r].means() for r in ROWS if merged[r].colorfulness}
        entry["by_kind"] = {
            k: {r: t[r].means() for r in ROWS if t[r].colorfulness} for k, t in scores[m].items()
        }
        entry["pages_by_kind"] = {k: len(t["member"].colorfulness) for k, t in scores[m].items()}
        report["members"][m] = entry
    if pair_scores:
        report["pairwise"] = {k: float(np.mean(v)) for k, v in pair_scores.items()}
        report["pairwise"]["mean"] = float(np.mean(list(report["pairwise"].values())))
    return report


def format_table(report: dict[str, Any]) -> str:
    """The report as plain-text tables (one per member, then the pairwise figures)."""
    lines = [f"{report['dataset']} [{report['split']}], {report['pages']} pages, "
             f"{report['options']}"]
    for m, entry in report["members"].items():
        lines.append("")
        lines.append(f"{m:<20} {'CIEDE2000 ↓':>12} {'colorfulness':>13} {'lines dark':>11}")
        for r in ROWS:
            if r not in entry:
                continue
            v = entry[r]
            de = "—" if v["ciede2000"] is None else f"{v['ciede2000']:.2f}"
            lines.append(f"  {r:<18} {de:>12} {v['colorfulness']:>13.1f} "
                         f"{v['lines_kept_dark']:>11.3f}")
    if "pairwise" in report:
        lines.append("")
        lines.append("pairwise CIEDE2000 between members (same pages):")
        for k, v in report["pairwise"].items():
            lines.append(f"  {k:<30} {v:6.2f}")
    return "\n".join(lines)

"""How good are the family's colorings on pages nobody trained on? Figures and a grid.

Two sets, neither ever used for training:

- **held out, with truth**: an emoji collection no member trained on (default: the
  Firefox OS emoji, `colorbot dataset iconify fxemoji`), its stored pairs scaled up to
  `--size` (the page as a person would post it); every figure, CIEDE2000 included;
- **real coloring pages, no truth**: Tux Paint's "starters", drawn as coloring pages
  (Debian `tuxpaint-data`; the photo-like ones are left out).

Per member (and for the uncolored page) it prints and saves: mean CIEDE2000 to the
truth, colorfulness, distinct region colors per page, background lightness and line
visibility (definitions: `training/quality.py`), and writes one picture: the real pages
(rows) x the members (columns).

    .venv/bin/python benchmarks/quality.py --heldout /work/datasets/fxemoji \\
        --cache-dir /work/cache --json benchmarks/results/quality.json \\
        --grid docs/quality_grid.jpg

Figures are computed at `--metric-size` (long side; the colorings themselves are made
at `--size`), which keeps a run of 150 pages x 5 members to a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.decoder import MEMBER_SETTINGS  # noqa: E402
from models.family import Family  # noqa: E402
from models.images import page_lightness  # noqa: E402
from models.pipeline import ColorizeOptions, Colorizer  # noqa: E402
from training.evaluate import colorfulness, mean_ciede2000  # noqa: E402
from training.quality import PageRegions, coloring_figures  # noqa: E402

# Tux Paint starters that are coloring pages (line art on white), by file name.
REAL_PAGES = (
    "chicken.png", "frog.png", "tux_farmer.png", "stained_glass.svg", "old_soviet_car.svg",
    "skull.svg", "bald_eagle.svg", "car2.svg", "desert_tortoise.svg", "elephant.svg",
    "fish_icon.svg", "gecko.svg", "hat.svg", "manatee.svg", "woodpecker.svg", "pansy.png",
    "rocket.png", "jetplane.png", "shipwreck.png", "street.png",
)
GRID_PAGES = ("chicken.png", "frog.png", "tux_farmer.png", "stained_glass.svg",
              "old_soviet_car.svg", "skull.svg", "fish_icon.svg", "car2.svg")


def fit(image: Image.Image, size: int) -> Image.Image:
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def heldout_pages(folder: Path, count: int, size: int, split: str | None = None) -> list[tuple]:
    """(name, page RGB, truth RGB) at `size`, a fixed spread of the collection's pairs."""
    from training.train import read_manifest

    rows = read_manifest(folder, split)
    step = max(1, len(rows) // count)
    out = []
    for row in rows[::step][:count]:
        page = Image.open(folder / row["page"]).convert("RGB")
        truth = Image.open(folder / row["color"]).convert("RGB")
        out.append((row["source"], fit(page, size), fit(truth, size)))
    return out


def real_pages(cache_dir: Path | None, size: int) -> list[tuple[str, Image.Image]]:
    from training.collections import fetch_deb
    from training.datasets.images import on_white, render_svg

    root = fetch_deb("tuxpaint-data", cache_dir) / "usr/share/tuxpaint/starters"
    out = []
    for name in REAL_PAGES:
        path = root / name
        image = render_svg(path, size) if path.suffix == ".svg" else fit(
            on_white(Image.open(path)), size)
        out.append((name, image))
    return out


def small(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(fit(image, size) if max(image.size) > size else image)


def measure(colorizer: Colorizer, members: list[str], pages, options: ColorizeOptions,
            metric_size: int, truth: bool) -> tuple[dict, dict]:
    """Per-member mean figures and the colorings (for the grid)."""
    from skimage.color import rgb2lab

    sums: dict[str, dict[str, list[float]]] = {}
    colorings: dict[str, dict[str, Image.Image]] = {}

    def add(who: str, key: str, value: float) -> None:
        sums.setdefault(who, {}).setdefault(key, []).append(value)

    for item in pages:
        name, page = item[0], item[1]
        page_small = small(page, metric_size)
        pr = PageRegions.of(page_lightness(Image.fromarray(page_small)))
        truth_lab = rgb2lab(small(item[2], metric_size)) if truth else None
        prepared = colorizer.prepare(page, options)
        outputs = {m: colorizer.run_member(m, [prepared])[0] for m in members}
        colorings[name] = outputs
        for who, image in [("uncolored", page)] + list(outputs.items()):
            rgb = small(image, metric_size)
            for key, value in coloring_figures(rgb, pr).items():
                add(who, key, value)
            if truth_lab is not None:
                add(who, "ciede2000", mean_ciede2000(rgb2lab(rgb), truth_lab))
        if truth:
            rgb = small(item[2], metric_size)
            add("truth", "colorfulness", colorfulness(rgb))
            for key, value in coloring_figures(rgb, pr).items():
                add("truth", key, value)
    means = {who: {k: float(np.mean(v)) for k, v in parts.items()} for who, parts in sums.items()}
    return means, colorings


def print_table(title: str, means: dict) -> None:
    keys = ["ciede2000", "colorfulness", "region_colors", "background_l", "line_visibility"]
    print(f"\n{title}")
    print(f"{'':12s}" + "".join(f"{k:>16s}" for k in keys))
    for who, row in means.items():
        cells = "".join(f"{row[k]:16.2f}" if k in row else f"{'-':>16s}" for k in keys)
        print(f"{who:12s}{cells}")
    if "uncolored" in means and "ciede2000" in means["uncolored"]:
        base = means["uncolored"]["ciede2000"]
        ratios = {w: r["ciede2000"] / base for w, r in means.items()
                  if "ciede2000" in r and w not in ("uncolored", "truth")}
        print("CIEDE2000 / uncolored: " + ", ".join(f"{w} {v:.2f}x" for w, v in ratios.items()))


def grid(members: list[str], pages, colorings, path: Path, cell: int) -> None:
    """Rows: real pages; columns: the page, then each member's coloring."""
    from models.sheet import _text_font  # one place for the sheet font

    label_h = 28
    cols = 1 + len(members)
    rows = [(n, p) for n, p in pages if n in GRID_PAGES]
    sheet = Image.new("RGB", (cols * cell, label_h + len(rows) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    font = _text_font(16)
    headers = ["page"] + [f"{m}" for m in members]
    for c, text in enumerate(headers):
        draw.text((c * cell + 6, 5), text, fill=(0, 0, 0), font=font)
    for r, (name, page) in enumerate(rows):
        images = [page] + [colorings[name][m] for m in members]
        for c, image in enumerate(images):
            thumb = image.copy()
            thumb.thumbnail((cell - 4, cell - 4), Image.Resampling.LANCZOS)
            x = c * cell + (cell - thumb.width) // 2
            y = label_h + r * cell + (cell - thumb.height) // 2
            sheet.paste(thumb, (x, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88) if path.suffix.lower() in (".jpg", ".jpeg") else sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--family", default=None, help="family folder (default: the bundled one)")
    p.add_argument("--member", action="append", help="only these members (repeatable)")
    p.add_argument("--heldout", type=Path, required=True,
                   help="dataset folder of the held-out collection (never trained on)")
    p.add_argument("--pages", type=int, default=150, help="held-out pages (default 150)")
    p.add_argument("--split", default=None, help="only this split of --heldout (tuning on a "
                   "training collection's val split; default: every pair)")
    p.add_argument("--prior-weight", type=float, default=None,
                   help="decoder setting to try (default: each member's own)")
    p.add_argument("--diversity-margin", type=float, default=None,
                   help="decoder setting (default: each member's own)")
    p.add_argument("--hedge", type=float, default=None,
                   help="decoder setting to try (default: each member's own)")
    p.add_argument("--memory-weight", type=float, default=None,
                   help="weight of the member's memory beside its network (decoder setting; "
                        "default: each member's own)")
    p.add_argument("--gray-penalty", type=float, default=None,
                   help="nats taken from gray cells inside the drawing (decoder setting; "
                        "default: each member's own)")
    p.add_argument("--memory-lightness", type=float, default=None,
                   help="how far a region's L moves toward its recalled lightness (decoder "
                        "setting; default: each member's own)")
    p.add_argument("--no-real", action="store_true",
                   help="skip the real coloring pages (default: measure them)")
    p.add_argument("--size", type=int, default=1024,
                   help="long side pages are colored at (default 1024)")
    p.add_argument("--metric-size", type=int, default=512,
                   help="long side figures use (default 512)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="package cache (tuxpaint-data; default: the collections' own)")
    p.add_argument("--decoder", choices=("regions", "median"), default="regions",
                   help="region colors by the region decoder (default) or the median")
    p.add_argument("--seed", type=int, default=None,
                   help="decoder seed (another try; default: none, deterministic)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", type=Path, help="save the figures here (default: not saved)")
    p.add_argument("--grid", type=Path,
                   help="save the real pages x members grid here (default: not saved)")
    p.add_argument("--cell", type=int, default=200, help="grid cell size (px, default 200)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    family = Family.load(args.family)
    members = args.member or family.names
    # Decoder settings to try go where members keep their own (`extra.decoder`).
    tried = {k: getattr(args, k) for k in MEMBER_SETTINGS
             if getattr(args, k, None) is not None}
    for member in family.members:
        member.extra = {**member.extra,
                        "decoder": {**member.extra.get("decoder", {}), **tried}}
    colorizer = Colorizer(family, device="cpu")
    options = ColorizeOptions(decoder=args.decoder, seed=args.seed)
    t0 = time.perf_counter()
    held = heldout_pages(args.heldout, args.pages, args.size, args.split)
    held_means, _ = measure(colorizer, members, held, options, args.metric_size, truth=True)
    print_table(f"held out: {args.heldout.name}, {len(held)} pages at {args.size} px", held_means)
    if args.no_real:
        return 0
    real = real_pages(args.cache_dir, args.size)
    real_means, colorings = measure(colorizer, members, real, options, args.metric_size,
                                    truth=False)
    print_table(f"real coloring pages: Tux Paint starters, {len(real)} pages", real_means)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "family": str(args.family or "bundled"), "decoder": args.decoder, "seed": args.seed,
            "size": args.size, "metric_size": args.metric_size,
            "heldout": {"collection": args.heldout.name, "pages": len(held),
                        "figures": held_means},
            "real": {"pages": [n for n, _ in real], "figures": real_means},
        }, indent=2) + "\n")
    if args.grid:
        grid(members, real, colorings, args.grid, args.cell)
        print(f"grid: {args.grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Where more compute leads: the shared base's held-out figures against training time.

Reads the weights a training run kept (`keep_weights_every`: `<run>/weights/step_*.
safetensors`, each with its wall time), colors the same held-out pages with each
(network alone: no memory, the region decoder), and prints and saves CIEDE2000 to the
truth (beside the uncolored page), distinct region colors and colorfulness per step.

    .venv/bin/python benchmarks/base_curve.py --run /work/runs/base \\
        --heldout /work/datasets/fxemoji --json benchmarks/results/base_curve.json \\
        --plot docs/base_curve.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.quality import heldout_pages, measure  # noqa: E402
from models.family import Family, FamilyMember, write_manifest  # noqa: E402
from models.pipeline import ColorizeOptions, Colorizer  # noqa: E402


def family_for(weights: Path, config: dict, work_size: int, folder: Path) -> Family:
    shutil.copyfile(weights, folder / "base.safetensors")
    member = FamilyMember(name="base", emoji="🧪", description="shared base", architecture="unet",
                          config=config, weights="base.safetensors", work_size=work_size)
    write_manifest(folder / "manifest.json", [member])
    return Family.load(folder)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="training run folder")
    p.add_argument("--heldout", type=Path, required=True, help="held-out dataset folder")
    p.add_argument("--pages", type=int, default=60)
    p.add_argument("--size", type=int, default=512, help="long side pages are colored at")
    p.add_argument("--metric-size", type=int, default=256)
    p.add_argument("--work-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args(argv)

    from safetensors import safe_open

    torch.set_num_threads(args.threads)
    ckpt = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=False)
    config = {**ckpt["config"]["net"], "out_channels": 3}
    pages = heldout_pages(args.heldout, args.pages, args.size)
    points = []
    for weights in sorted((args.run / "weights").glob("step_*.safetensors")):
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
        with tempfile.TemporaryDirectory() as tmp:
            family = family_for(weights, config, args.work_size, Path(tmp))
            means, _ = measure(Colorizer(family, device="cpu"), ["base"], pages,
                               ColorizeOptions(), args.metric_size, truth=True)
        row = {"step": int(meta.get("step", 0)),
               "wall_minutes": round(float(meta.get("wall_seconds", 0)) / 60, 1),
               "ciede2000": means["base"]["ciede2000"],
               "uncolored": means["uncolored"]["ciede2000"],
               "region_colors": means["base"]["region_colors"],
               "colorfulness": means["base"]["colorfulness"]}
        row["ratio"] = row["ciede2000"] / row["uncolored"]
        points.append(row)
        print(f"step {row['step']:5d}  {row['wall_minutes']:6.1f} min  CIEDE2000 "
              f"{row['ciede2000']:.2f} ({row['ratio']:.2f}x uncolored)  region colors "
              f"{row['region_colors']:.2f}  colorfulness {row['colorfulness']:.1f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"run": str(args.run), "heldout": args.heldout.name,
                                         "pages": len(pages), "points": points}, indent=2))
    if args.plot and points:
        plot(points, args.plot)
    return 0


def plot(points: list[dict], path: Path) -> None:
    from PIL import Image, ImageDraw

    w, h, pad = 640, 360, 50
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    xs = [p["wall_minutes"] for p in points]
    ys = [p["ratio"] for p in points]
    x0, x1 = 0.0, max(xs) * 1.05 or 1.0
    y0, y1 = min(0.7, min(ys) - 0.05), max(1.3, max(ys) + 0.05)

    def at(x: float, y: float) -> tuple[float, float]:
        return (pad + (x - x0) / (x1 - x0) * (w - 2 * pad),
                h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad))

    d.rectangle((pad, pad, w - pad, h - pad), outline=(0, 0, 0))
    for ref, color in ((1.0, (150, 150, 150)), (0.8, (40, 160, 40))):
        d.line([at(x0, ref), at(x1, ref)], fill=color)
        d.text((w - pad + 4, at(x0, ref)[1] - 6), f"{ref:.1f}x", fill=color)
    d.line([at(x, y) for x, y in zip(xs, ys, strict=True)], fill=(200, 40, 40), width=2)
    for x, y in zip(xs, ys, strict=True):
        cx, cy = at(x, y)
        d.ellipse((cx - 3, cy - 3, cx + 3, cy + 3), fill=(200, 40, 40))
    d.text((pad, 10), "shared base: held-out CIEDE2000 / uncolored page, against "
           "training minutes (2 CPU cores)", fill=(0, 0, 0))
    d.text((pad, h - pad + 10), "0 min", fill=(0, 0, 0))
    d.text((w - pad - 40, h - pad + 10), f"{x1:.0f} min", fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


if __name__ == "__main__":
    raise SystemExit(main())

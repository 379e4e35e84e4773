"""Write the bundled placeholder family: real networks, quickly fitted on synthetic pages.

Until the training package produces members trained on their real collections, the
bundled family in `models/family/` holds these placeholders so that every part of
colorbot (CLI, worker, bot) runs end to end. They are honest networks run by the
real pipeline, fitted for a few hundred steps on synthetic coloring pages: random
shapes with black outlines, each member's shapes painted from its own small palette
(warm yellows for openmoji, a rainbow for fluent, primaries for clipart, muted
landscape tones for artworks), the color chosen by shape type and height on the page.
So each member already "colors from its own point of view", crudely.

    python -m models.make_placeholder_family --out DIR            # minutes on 2 CPU cores
    python -m models.make_placeholder_family --out DIR --steps 0  # seeded, untrained weights

The bundled family in `models/family/` now holds trained members: it is written only
with `--into-bundled`, never by default.

The trainer replaces entries and weights with trained ones (same manifest format).
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.nn import functional as F

from models.colorspace import normalize_lab, rgb_to_lab
from models.family import Family, build_network, save_weights
from models.registry import BUNDLED_FAMILY_DIR, FamilyMember

PLACEHOLDER_NOTE = (
    "placeholder: fitted for a few minutes on synthetic shapes "
    "(models/make_placeholder_family.py) until trained on its collection"
)


@dataclass(frozen=True)
class Spec:
    name: str
    emoji: str
    description: str
    architecture: str
    config: dict[str, Any]
    collection: str
    license: str
    palette: tuple[tuple[int, int, int], ...]  # (shape type x band) colors
    background: tuple[int, int, int]


SPECS = (
    Spec(
        "openmoji", "😀", "Grew up on OpenMoji: bold outlines, sunny flat colors.", "unet",
        {"out_channels": 3, "base_channels": 8, "depth": 4, "max_channels": 64},
        "OpenMoji color/line-art pairs (npm openmoji)", "CC BY-SA 4.0",
        ((252, 206, 44), (241, 142, 40), (226, 63, 53), (146, 211, 245), (182, 227, 129),
         (255, 236, 170)),
        (255, 255, 255),
    ),
    Spec(
        "fluent", "🌈", "Grew up on Microsoft Fluent emoji: soft modern gradients.", "unet",
        {"out_channels": 3, "base_channels": 8, "depth": 4, "max_channels": 64},
        "Microsoft Fluent emoji (npm fluentui-emoji)", "MIT",
        ((234, 67, 92), (255, 159, 67), (255, 214, 72), (78, 196, 120), (72, 144, 236),
         (156, 102, 220)),
        (238, 244, 255),
    ),
    Spec(
        "clipart", "📎", "Grew up on public-domain clip art: primary colors, no fuss.", "pix2pix",
        {"out_channels": 3, "base_channels": 16, "depth": 6, "max_channels": 128,
         "dropout": 0.5},
        "Openclipart (Debian openclipart-svg)", "Public domain (CC0)",
        ((220, 30, 40), (30, 80, 200), (250, 210, 20), (40, 160, 60), (240, 120, 20),
         (120, 60, 30)),
        (255, 255, 255),
    ),
    Spec(
        "artworks", "🎨", "Grew up on desktop wallpapers and artwork: skies and landscapes.",
        "unet",
        {"out_channels": 3, "base_channels": 8, "depth": 4, "max_channels": 64},
        "Desktop wallpapers/artwork (Debian gnome-backgrounds and others)",
        "Various free licenses (GPL, CC BY-SA); see each package",
        ((88, 130, 190), (140, 170, 210), (96, 140, 80), (160, 120, 80), (70, 60, 90),
         (200, 150, 110)),
        (214, 228, 240),
    ),
)


def synthetic_pair(spec: Spec, size: int, rng: random.Random) -> tuple[Image.Image, Image.Image]:
    """(page, colored) RGB images: shapes outlined in black, colored from the palette."""
    color = Image.new("RGB", (size, size), spec.background)
    page = Image.new("RGB", (size, size), (255, 255, 255))
    dc, dp = ImageDraw.Draw(color), ImageDraw.Draw(page)
    width = max(1, size // 64)
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randrange(-size // 8, size), rng.randrange(-size // 8, size)
        w, h = rng.randrange(size // 8, size // 2), rng.randrange(size // 8, size // 2)
        box = (x0, y0, x0 + w, y0 + h)
        shape = rng.randrange(3)
        band = 0 if (y0 + h / 2) < size / 2 else 1  # upper or lower half of the page
        fill = spec.palette[(shape * 2 + band) % len(spec.palette)]
        for draw, paint in ((dc, fill), (dp, (255, 255, 255))):
            if shape == 0:
                draw.ellipse(box, fill=paint, outline=(0, 0, 0), width=width)
            elif shape == 1:
                draw.rectangle(box, fill=paint, outline=(0, 0, 0), width=width)
            else:
                pts = [(x0 + w / 2, y0), (x0 + w, y0 + h), (x0, y0 + h)]
                draw.polygon(pts, fill=paint, outline=(0, 0, 0), width=width)
    return page, color


def _to_tensor(image: Image.Image) -> torch.Tensor:
    arr = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)  # (3, H, W)


def fit(
    net: torch.nn.Module, spec: Spec, steps: int, seed: int, size: int = 64, batch: int = 6
) -> float:
    """A few Adam steps of L1 on synthetic pairs; returns the last loss."""
    rng = random.Random(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        if step and step % 20 == 0:
            print(f"  {spec.name}: step {step}/{steps}, L1 {float(loss.detach()):.4f}", flush=True)
        pairs = [synthetic_pair(spec, size, rng) for _ in range(batch)]
        page = torch.stack([_to_tensor(p) for p, _ in pairs])
        target = normalize_lab(rgb_to_lab(torch.stack([_to_tensor(c) for _, c in pairs])))
        lightness = normalize_lab(rgb_to_lab(page))[:, :1]  # (B, 1, H, W)
        loss = F.l1_loss(net(lightness), target)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch's Tensor.backward is unannotated
        opt.step()
    net.eval()
    return float(loss.detach())


def make_family(out: Path, steps: int, seed: int = 0, work_size: int = 256) -> Family:
    out.mkdir(parents=True, exist_ok=True)
    members = []
    for i, spec in enumerate(SPECS):
        torch.manual_seed(seed + i)
        member = FamilyMember(
            name=spec.name,
            emoji=spec.emoji,
            description=spec.description,
            architecture=spec.architecture,
            config=dict(spec.config),
            weights=f"{spec.name}.safetensors",
            version=1,
            trained_on=f"{spec.collection} — {PLACEHOLDER_NOTE}",
            license=spec.license,
            work_size=work_size,
            kind="lineart",
            extra={"placeholder": True, "fit_steps": steps, "seed": seed + i},
        )
        net = build_network(member)
        started = time.perf_counter()
        loss = fit(net, spec, steps, seed + i) if steps > 0 else float("nan")
        member.weights_sha256 = save_weights(net, out / member.weights)
        if steps > 0:
            member.extra["fit_l1"] = round(loss, 4)
        print(f"{spec.name}: {steps} steps, L1 {loss:.4f}, {time.perf_counter() - started:.0f} s")
        members.append(member)
    family = Family(out, members)
    family.save_manifest()
    return family


def _is_bundled(path: Path) -> bool:
    folder, bundled = path.resolve(), BUNDLED_FAMILY_DIR.resolve()
    return folder == bundled or bundled in folder.parents


def main(argv: list[str] | None = None) -> int:
    from colorbot.clihelp import DefaultsHelpFormatter

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="family folder to write (required unless --into-bundled)")
    parser.add_argument("--into-bundled", action="store_true",
                        help="write the bundled family in models/family/, replacing its "
                        "trained members")
    parser.add_argument("--steps", type=int, default=80, help="fit steps per member (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed for shapes and weights")
    parser.add_argument("--work-size", type=int, default=256,
                        help="members' working resolution (long side, px)")
    args = parser.parse_args(argv)
    if args.into_bundled:
        if args.out is not None and not _is_bundled(args.out):
            parser.error("--into-bundled writes models/family/; leave out --out")
        out = BUNDLED_FAMILY_DIR
    elif args.out is None:
        parser.error("say where: --out DIR (or --into-bundled to overwrite the bundled, "
                     "trained family)")
    elif _is_bundled(args.out):
        parser.error(f"{args.out} is the bundled family; pass --into-bundled to overwrite it")
    else:
        out = args.out
    make_family(out, args.steps, args.seed, args.work_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

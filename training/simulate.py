"""Simulated voters with a hidden taste, voting through the same db code the bot uses.

The learning-from-votes loop cannot be checked against real people in a test, so we
make people up: each simulated voter likes some things in a coloring — warm colors,
strong (saturated) colors, flat fills without blotches — with weights drawn around a
hidden *taste*. A voter looks at every coloring of a page and picks one, the better
ones more likely (a softmax choice, Plackett–Luce's first pick, so voters are noisy
but not random). Because the taste is known, we can later ask whether the leaderboard
found its order, whether the judge learned it, and whether retraining moved the
members towards it.

Votes go through `db.repository` — the same functions the bot's reaction listener
calls — so the whole chain (one live vote per user and page, vote moves, per-guild
pages) is exercised.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import color as skcolor

# The hue (LAB angle, degrees) a "warm" taste likes most: orange, between red (~40°)
# and yellow (~90°). Blues and cyans (~230°) count as cold.
WARM_HUE_DEG = 60.0
TASTE_SIZE = 128  # long side at which a coloring is looked at (taste is resolution-free)


@dataclass(frozen=True)
class HiddenTaste:
    """What the simulated voters like, as weights on three properties of a coloring."""

    warmth: float = 1.0  # chroma-weighted closeness of hues to orange (cold colors count < 0)
    saturation: float = 0.5  # mean chroma of the paper (not the lines)
    flatness: float = 0.3  # lack of color gradients inside regions (crayon-flat fills)
    temperature: float = 0.06  # voters' noise: softmax temperature over taste scores
    voter_spread: float = 0.25  # how much voters' weights differ (log-normal sigma)

    def weights(self) -> np.ndarray:
        return np.array([self.warmth, self.saturation, self.flatness])

    def score(self, coloring: Image.Image) -> float:
        return float(self.weights() @ taste_features(coloring))


TASTES = {
    "warm": HiddenTaste(),
    "vivid": HiddenTaste(warmth=0.2, saturation=1.0, flatness=0.3),
    "flat": HiddenTaste(warmth=0.2, saturation=0.3, flatness=1.0),
}


def taste_features(coloring: Image.Image) -> np.ndarray:
    """(warmth, saturation, flatness) of a coloring, each about in [-1, 1].

    Looked at on the paper only (pixels that are not the dark lines), at TASTE_SIZE.
    """
    img = coloring.convert("RGB")
    scale = TASTE_SIZE / max(img.size)
    if scale < 1:
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))),
            Image.Resampling.BILINEAR,
        )
    lab = skcolor.rgb2lab(np.asarray(img, dtype=np.float32) / 255.0)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    paper = lightness > 35.0
    if paper.sum() < 16:
        return np.zeros(3)
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    warm = chroma * np.cos(hue - math.radians(WARM_HUE_DEG))
    # Color gradient magnitude, only where both neighbours are paper (lines are edges
    # by design and do not count against flatness).
    ga = np.zeros_like(a)
    gb = np.zeros_like(a)
    ga[:, 1:] = np.hypot(np.diff(a, axis=1), np.diff(b, axis=1))
    gb[1:, :] = np.hypot(np.diff(a, axis=0), np.diff(b, axis=0))
    inside_x = paper.copy()
    inside_x[:, 1:] &= paper[:, :-1]
    inside_y = paper.copy()
    inside_y[1:, :] &= paper[:-1, :]
    grad = (ga * inside_x).sum() / max(1, inside_x.sum()) + (gb * inside_y).sum() / max(
        1, inside_y.sum()
    )
    return np.array(
        [
            warm[paper].mean() / 50.0,
            chroma[paper].mean() / 50.0,
            -grad / 5.0,
        ]
    )


@dataclass
class Voter:
    user_id: int
    guild_id: int
    weights: np.ndarray  # this voter's own weights around the hidden taste

    def choose(self, features: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
        """Index of the coloring this voter votes for; `features` is (n_colorings, 3)."""
        s = features @ self.weights / temperature
        p = np.exp(s - s.max())
        return int(rng.choice(len(p), p=p / p.sum()))


def make_voters(
    taste: HiddenTaste, n_voters: int, guilds: Sequence[int], seed: int = 0
) -> list[Voter]:
    rng = np.random.default_rng(seed)
    voters = []
    for k in range(n_voters):
        jitter = np.exp(rng.normal(0.0, taste.voter_spread, 3))
        voters.append(Voter(10_000 + k, guilds[k % len(guilds)], taste.weights() * jitter))
    return voters


# --- pages ---------------------------------------------------------------------------


def synthetic_page(seed: int, size: int = 128) -> Image.Image:
    """A coloring page drawn from shapes: black outlines on white, closed regions."""
    rnd = random.Random(seed)
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    width = max(2, size // 64)
    draw.line([(0, size * 0.7), (size, size * 0.7 + rnd.uniform(-8, 8))], fill=0, width=width)
    for _ in range(rnd.randint(2, 5)):
        x, y = rnd.uniform(0, size * 0.8), rnd.uniform(0, size * 0.8)
        w, h = rnd.uniform(size * 0.15, size * 0.45), rnd.uniform(size * 0.15, size * 0.45)
        box = [x, y, min(size - 2, x + w), min(size - 2, y + h)]
        shape = rnd.choice(("ellipse", "rectangle", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, outline=0, width=width)
        elif shape == "rectangle":
            draw.rectangle(box, outline=0, width=width)
        else:
            pts = [(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) / 2, box[1])]
            draw.polygon(pts, outline=0, width=width)
    return img.convert("RGB")


@dataclass
class PageSource:
    """A page to vote on: its image, where it came from and its bytes' hash."""

    image: Image.Image
    source: str
    collection: str = "synthetic"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image.tobytes() + self.source.encode()).hexdigest()


def dataset_pages(
    root: str | Path,
    splits: Sequence[str] = ("val", "test"),
    kind: str = "lineart",
    limit: int | None = None,
    seed: int = 0,
) -> list[PageSource]:
    """Pages (mode RGB) from every dataset folder under `root` (manifest.jsonl each).

    Taken from the given splits only, so the members never trained on them; shuffled
    with `seed` and mixed across collections.
    """
    root = Path(root)
    records: list[tuple[Path, dict]] = []
    for manifest in sorted(root.glob("*/manifest.jsonl")):
        for line in manifest.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("split") in splits and rec.get("kind", "lineart") == kind:
                records.append((manifest.parent, rec))
    random.Random(seed).shuffle(records)
    out = []
    for folder, rec in records[: limit if limit is not None else len(records)]:
        try:
            img = Image.open(folder / rec["page"]).convert("RGB")
        except OSError:
            continue
        out.append(PageSource(img, f"{folder.name}:{rec['id'][:12]}", rec.get("collection", "")))
    return out


def pages_for_simulation(
    n: int, datasets_root: str | Path | None = None, seed: int = 0, size: int = 128
) -> list[PageSource]:
    """`n` real pages from the datasets when there are enough, else synthetic ones."""
    pages: list[PageSource] = []
    if datasets_root and Path(datasets_root).is_dir():
        pages = dataset_pages(datasets_root, limit=n, seed=seed)
    k = 0
    while len(pages) < n:
        pages.append(PageSource(synthetic_page(seed * 100_003 + k, size), f"synthetic:{seed}:{k}"))
        k += 1
    return pages


@dataclass
class SimulationReport:
    taste: dict
    pages: int = 0
    colorings: int = 0
    votes: int = 0
    moved_votes: int = 0
    taste_best_share: float = 0.0  # votes that went to the taste's favourite coloring
    taste_order: list[str] = field(default_factory=list)  # members, best first
    member_taste: dict[str, float] = field(default_factory=dict)  # mean taste score
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

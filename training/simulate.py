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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from skimage import color as skcolor

from db.results import NewColoring

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
    # Pages on which each member's coloring is the taste's favourite. Votes name only a
    # favourite, so this (plurality) order is what first-choice votes carry most
    # directly; it can differ from `taste_order` when a member is never anyone's
    # favourite yet beats another head to head (see benchmarks/retrain_cycle.py).
    taste_favourite_pages: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


async def simulate_votes(
    db: Any,
    family: Any,
    pages: Sequence[PageSource],
    *,
    taste: HiddenTaste,
    n_votes: int,
    n_voters: int = 60,
    guilds: Sequence[int] = (1, 2),
    move_share: float = 0.1,
    seed: int = 0,
    colorize: Callable[[list[Image.Image]], list[dict[str, Image.Image]]] | None = None,
    batch_pages: int = 8,
) -> SimulationReport:
    """Post `pages`, color them with every member, and let voters vote until `n_votes`.

    Each page is recorded as if posted in a Discord channel (guilds round-robin), its
    colorings as the bot's reply message, and each vote as a reaction on that message
    (`db.cast_vote`, like the bot's listener). A share `move_share` of voters first
    react to another coloring and then change their mind (the vote moves). Votes are
    spread evenly over the pages; a voter votes at most once per page.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    if colorize is None:
        from models.pipeline import Colorizer

        colorizer = Colorizer(family, device="cpu")

        def colorize(images: list[Image.Image]) -> list[dict[str, Image.Image]]:
            return colorizer.colorize(images)

    voters = make_voters(taste, n_voters, guilds, seed=seed)
    by_guild: dict[int, list[Voter]] = {}
    for v in voters:
        by_guild.setdefault(v.guild_id, []).append(v)
    members = list(family.members)
    per_page = max(1, math.ceil(n_votes / max(1, len(pages))))
    report = SimulationReport(taste=asdict(taste))
    taste_sum: dict[str, list[float]] = {m.name: [] for m in members}
    best_votes = 0
    favourites: dict[str, int] = {m.name: 0 for m in members}
    message = 9_000_000_000 + seed * 1_000_000  # fake Discord message ids

    for start in range(0, len(pages), batch_pages):
        if report.votes >= n_votes:
            break
        chunk = pages[start : start + batch_pages]
        results = colorize([p.image for p in chunk])
        for k, (src, colored) in enumerate(zip(chunk, results, strict=True)):
            if report.votes >= n_votes:
                break
            guild = guilds[(start + k) % len(guilds)]
            message += 2
            recorded = await db.record_page(
                _png(src.image),
                guild_id=guild,
                channel_id=guild * 10,
                message_id=message,
                author_id=int(rng.integers(1, 1000)),
                source="simulated",
                filename=f"{src.source}.png",
                kind="lineart",
                width=src.image.width,
                height=src.image.height,
            )
            page_id = recorded.page.id
            new = [
                NewColoring(
                    member=m.name,
                    version=m.version,
                    emoji=m.emoji,
                    image=_png(colored[m.name]),
                    parameters={"strength": 1.0, "fill": None, "kind": "auto"},
                    weights_sha256=m.weights_sha256 or None,
                )
                for m in members
            ]
            await db.record_colorings(page_id, new, message_id=message + 1)
            feats = np.stack([taste_features(colored[m.name]) for m in members])
            truth = feats @ taste.weights()
            for m, score in zip(members, truth, strict=True):
                taste_sum[m.name].append(float(score))
            favourite = members[int(np.argmax(truth))].name
            favourites[favourite] += 1
            pool = by_guild[guild]
            chosen = rng.choice(len(pool), size=min(per_page, len(pool)), replace=False)
            for vi in chosen:
                if report.votes >= n_votes:
                    break
                voter = pool[int(vi)]
                pick = voter.choose(feats, taste.temperature, rng)
                if rng.random() < move_share:
                    first = int(rng.integers(0, len(members)))
                    await db.cast_vote(
                        message + 1, members[first].emoji, voter.user_id, source="simulated"
                    )
                result = await db.cast_vote(
                    message + 1, members[pick].emoji, voter.user_id, source="simulated"
                )
                report.moved_votes += result.status == "moved"
                report.votes += 1
                best_votes += pick == int(np.argmax(truth))
            report.pages += 1
            report.colorings += len(members)
    report.member_taste = {k: float(np.mean(v)) for k, v in taste_sum.items() if v}
    report.taste_order = sorted(report.member_taste, key=lambda k: -report.member_taste[k])
    report.taste_best_share = best_votes / max(1, report.votes)
    report.taste_favourite_pages = favourites
    report.seconds = time.perf_counter() - t0
    return report

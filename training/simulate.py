"""Simulated voters with a hidden taste, voting through the same db code the bot uses.

The learning-from-votes loop cannot be checked against real people in a test, so we
make people up: each simulated voter likes some things in a coloring — colors close to
the picture's true colors (`faithful`: what real people mostly vote for, and the only
taste that depends on what the page shows), warm colors, strong (saturated) colors,
flat fills without blotches — with weights drawn around a hidden *taste*. A voter looks
at every coloring of a page and picks one, the better ones more likely (a softmax
choice, Plackett–Luce's first pick, so voters are noisy but not random). A
`Population` mixes tastes (`mixed`: some faithful, some vivid, some warm voters).
Because the taste is known, we can later ask whether the leaderboard found its order,
whether the judge learned it, and whether retraining moved the members towards it.

Vote counts are uneven, as on a real server (`vote_counts`): most pages get one or two
votes, a few get many (up to a cap).

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
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw
from skimage import color as skcolor

from db.results import NewColoring

if TYPE_CHECKING:
    from db import Database
    from models.family import Family

# The hue (LAB angle, degrees) a "warm" taste likes most: orange, between red (~40°)
# and yellow (~90°). Blues and cyans (~230°) count as cold.
WARM_HUE_DEG = 60.0
TASTE_SIZE = 128  # long side at which a coloring is looked at (taste is resolution-free)
# CIEDE2000 units per unit of the fidelity feature: a coloring 20 ΔE further from the
# true colors scores 1 lower (members differ by a few ΔE on most pages).
FIDELITY_DE = 20.0
N_FEATURES = 4  # warmth, saturation, flatness, fidelity


@dataclass(frozen=True)
class HiddenTaste:
    """What the simulated voters like, as weights on four properties of a coloring."""

    warmth: float = 1.0  # chroma-weighted closeness of hues to orange (cold colors count < 0)
    saturation: float = 0.5  # mean chroma of the paper (not the lines)
    flatness: float = 0.3  # lack of color gradients inside regions (crayon-flat fills)
    fidelity: float = 0.0  # closeness to the picture's true colors (needs pages with truth)
    temperature: float = 0.06  # voters' noise: softmax temperature over taste scores
    voter_spread: float = 0.25  # how much voters' weights differ (log-normal sigma)

    def weights(self) -> np.ndarray:
        return np.array([self.warmth, self.saturation, self.flatness, self.fidelity])

    def score(self, coloring: Image.Image, truth: Image.Image | None = None) -> float:
        return float(self.weights() @ taste_features(coloring, truth))

    @property
    def needs_truth(self) -> bool:
        return self.fidelity != 0.0

    def population(self) -> Population:
        return Population(((1.0, self),))


@dataclass(frozen=True)
class Population:
    """Voters of several tastes: (share, taste) per kind of voter."""

    groups: tuple[tuple[float, HiddenTaste], ...]

    @property
    def needs_truth(self) -> bool:
        return any(t.needs_truth for _, t in self.groups)

    def population(self) -> Population:
        return self

    def choice_probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n,) chance that a voter drawn from the population picks each coloring
        (`features` (n, N_FEATURES)), leaving out each voter's own jitter."""
        total = sum(share for share, _ in self.groups)
        p = np.zeros(len(features))
        for share, taste in self.groups:
            s = features @ taste.weights() / taste.temperature
            e = np.exp(s - s.max())
            p += share / total * e / e.sum()
        return p

    def to_dict(self) -> dict[str, Any]:
        return {"groups": [{"share": share, **asdict(t)} for share, t in self.groups]}


FAITHFUL = HiddenTaste(warmth=0.0, saturation=0.0, flatness=0.0, fidelity=1.0,
                       temperature=0.03)
WARM = HiddenTaste()
VIVID = HiddenTaste(warmth=0.2, saturation=1.0, flatness=0.3)
TASTES: dict[str, HiddenTaste | Population] = {
    "warm": WARM,
    "vivid": VIVID,
    "flat": HiddenTaste(warmth=0.2, saturation=0.3, flatness=1.0),
    "faithful": FAITHFUL,
    "mixed": Population(((0.6, FAITHFUL), (0.2, VIVID), (0.2, WARM))),
}


def as_population(taste: HiddenTaste | Population) -> Population:
    return taste.population()


def _at_taste_size(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    scale = TASTE_SIZE / max(img.size)
    if scale < 1:
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))),
            Image.Resampling.BILINEAR,
        )
    return img


def truth_distance(coloring: Image.Image, truth: Image.Image) -> float:
    """Mean CIEDE2000 per pixel between a coloring and the true colors, at TASTE_SIZE
    (`training.evaluate`'s figure, on a smaller picture)."""
    from training.evaluate import mean_ciede2000

    a = skcolor.rgb2lab(np.asarray(_at_taste_size(coloring), dtype=np.float32) / 255.0)
    b = skcolor.rgb2lab(
        np.asarray(_at_taste_size(truth.resize(coloring.size)), dtype=np.float32) / 255.0
    )
    return mean_ciede2000(a, b)


def taste_features(coloring: Image.Image, truth: Image.Image | None = None) -> np.ndarray:
    """(warmth, saturation, flatness, fidelity) of a coloring, each about in [-1, 1].

    Looked at on the paper only (pixels that are not the dark lines), at TASTE_SIZE;
    fidelity is minus the mean CIEDE2000 to `truth` over FIDELITY_DE (0 without truth).
    """
    fidelity = -truth_distance(coloring, truth) / FIDELITY_DE if truth is not None else 0.0
    img = _at_taste_size(coloring)
    lab = skcolor.rgb2lab(np.asarray(img, dtype=np.float32) / 255.0)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    paper = lightness > 35.0
    if paper.sum() < 16:
        return np.array([0.0, 0.0, 0.0, fidelity])
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
            fidelity,
        ]
    )


@dataclass
class Voter:
    user_id: int
    guild_id: int
    weights: np.ndarray  # this voter's own weights around the hidden taste
    temperature: float | None = None  # this voter's noise (None: the caller's)

    def choose(
        self, features: np.ndarray, temperature: float | None, rng: np.random.Generator
    ) -> int:
        """Index of the coloring this voter votes for; `features` is (n_colorings, 4)."""
        t = self.temperature if self.temperature is not None else temperature
        s = features @ self.weights / t
        p = np.exp(s - s.max())
        return int(rng.choice(len(p), p=p / p.sum()))


def make_voters(
    taste: HiddenTaste | Population, n_voters: int, guilds: Sequence[int], seed: int = 0
) -> list[Voter]:
    """`n_voters` voters; a population's groups get voters in proportion to their shares
    (every guild gets each kind)."""
    rng = np.random.default_rng(seed)
    # Fidelity's jitter comes from its own stream: the other three keep the draws they
    # had before fidelity existed (the same voters for the same seed).
    rng_fidelity = np.random.default_rng([seed, 1])
    groups = as_population(taste).groups
    total = sum(share for share, _ in groups)
    bounds = np.cumsum([share / total for share, _ in groups])
    voters = []
    for k in range(n_voters):
        # Spread the kinds evenly over the voter ids (and so over the guilds).
        g = int(np.searchsorted(bounds, ((k * 0.6180339887) % 1.0), side="right"))
        t = groups[min(g, len(groups) - 1)][1]
        jitter = np.exp(np.concatenate((rng.normal(0.0, t.voter_spread, N_FEATURES - 1),
                                        rng_fidelity.normal(0.0, t.voter_spread, 1))))
        voters.append(Voter(10_000 + k, guilds[k % len(guilds)], t.weights() * jitter,
                            t.temperature))
    return voters


def vote_counts(
    n_votes: int, n_pages: int, rng: np.random.Generator, *, cap: int | None = None,
    spread: str = "even",
) -> list[int]:
    """How many votes each page gets, in page order, summing to at most `n_votes`.

    "even": the same on every page (`n_votes / n_pages`, rounded up; the last pages
    get what is left). "realistic": most pages one or two votes, a few many — a
    geometric count (half the pages 1, a quarter 2, ...) capped at `cap` (default 5).
    Pages after the votes run out get 0.
    """
    if spread not in ("even", "realistic"):
        raise ValueError(f"spread must be even or realistic, not {spread!r}")
    counts = []
    left = n_votes
    if spread == "even":
        per_page = max(1, math.ceil(n_votes / max(1, n_pages)))
        if cap is not None:
            per_page = min(per_page, cap)
        for _ in range(n_pages):
            counts.append(min(per_page, left))
            left -= counts[-1]
        return counts
    cap = cap or 5
    # Half the pages one vote, a quarter two ... (geometric, p = 0.5); when the pages
    # are too few for that, p is lowered until the expected count fits the votes.
    p = 0.5
    wanted = n_votes / max(1, n_pages)
    while p > 0.02 and _capped_geometric_mean(p, cap) < wanted:
        p -= 0.01
    for _ in range(n_pages):
        k = min(cap, int(rng.geometric(p)), left)
        counts.append(k)
        left -= k
    # Draws can fall short of the votes asked for: top up pages still under the cap.
    open_pages = [i for i, c in enumerate(counts) if 0 < c < cap]
    while left > 0 and open_pages:
        i = open_pages[int(rng.integers(len(open_pages)))]
        counts[i] += 1
        left -= 1
        if counts[i] >= cap:
            open_pages.remove(i)
    return counts


def _capped_geometric_mean(p: float, cap: int) -> float:
    return sum(k * p * (1 - p) ** (k - 1) for k in range(1, cap)) + cap * (1 - p) ** (cap - 1)


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
    """A page to vote on: its image, where it came from, its bytes' hash, and the true
    colors when the page was made from a color picture (datasets) — what `faithful`
    voters compare with."""

    image: Image.Image
    source: str
    collection: str = "synthetic"
    truth: Image.Image | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.image.tobytes() + self.source.encode()).hexdigest()

    @property
    def group(self) -> str:
        """The picture this page was made from: a page and its mirror image share it."""
        return self.source.removesuffix(MIRROR_SUFFIX)

    def mirrored(self) -> PageSource:
        """The same picture flipped left to right (truth too): a new page to color."""
        flip = Image.Transpose.FLIP_LEFT_RIGHT
        truth = self.truth.transpose(flip) if self.truth is not None else None
        return PageSource(self.image.transpose(flip), self.source + MIRROR_SUFFIX,
                          self.collection, truth)


MIRROR_SUFFIX = ":mirror"


def dataset_pages(
    root: str | Path,
    splits: Sequence[str] = ("val", "test"),
    kind: str = "lineart",
    limit: int | None = None,
    seed: int = 0,
    collections: Sequence[str] | None = None,
    truth: bool = True,
) -> list[PageSource]:
    """Pages (mode RGB) from every dataset folder under `root` (manifest.jsonl each).

    Taken from the given splits only, so the members never trained on them; shuffled
    with `seed` and mixed across collections. `collections` keeps only those folders
    (say, a collection no member was grown on); `truth` loads each page's true colors.
    """
    root = Path(root)
    records: list[tuple[Path, dict[str, Any]]] = []
    for manifest in sorted(root.glob("*/manifest.jsonl")):
        if collections is not None and manifest.parent.name not in collections:
            continue
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
            true = Image.open(folder / rec["color"]).convert("RGB") if truth else None
        except (OSError, KeyError):
            continue
        out.append(PageSource(img, f"{folder.name}:{rec['id'][:12]}",
                              rec.get("collection", ""), true))
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
    taste: dict[str, Any]
    pages: int = 0
    colorings: int = 0
    votes: int = 0
    moved_votes: int = 0
    taste_best_share: float = 0.0  # votes that went to the taste's favourite coloring
    taste_order: list[str] = field(default_factory=list)  # members, best first
    # Mean over pages of the population's chance of picking each member's coloring.
    member_taste: dict[str, float] = field(default_factory=dict)
    # Pages on which each member's coloring is the taste's favourite. Votes name only a
    # favourite, so this (plurality) order is what first-choice votes carry most
    # directly; it can differ from `taste_order` when a member is never anyone's
    # favourite yet beats another head to head (see benchmarks/retrain_cycle.py).
    taste_favourite_pages: dict[str, int] = field(default_factory=dict)
    # Expected share of votes each member gets as the favourite (the population's
    # choice probabilities, averaged over the voted pages, weighted by their votes):
    # the order a favourite-choice board should find.
    taste_favourite_share: dict[str, float] = field(default_factory=dict)
    # page id -> member -> the population's chance of picking that coloring: the
    # taste's own verdicts, for its ceiling on held-out votes.
    page_values: dict[int, dict[str, float]] = field(default_factory=dict)
    votes_per_page: dict[int, int] = field(default_factory=dict)  # how many pages got k votes
    page_sources: dict[int, str] = field(default_factory=dict)  # page id -> PageSource.source
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


async def simulate_votes(
    db: Database,
    family: Family,
    pages: Sequence[PageSource],
    *,
    taste: HiddenTaste | Population,
    n_votes: int,
    n_voters: int = 60,
    guilds: Sequence[int] = (1, 2),
    move_share: float = 0.1,
    seed: int = 0,
    colorize: Callable[[list[Image.Image]], list[dict[str, Image.Image]]] | None = None,
    batch_pages: int = 8,
    spread: str = "even",
    max_per_page: int | None = None,
) -> SimulationReport:
    """Post `pages`, color them with every member, and let voters vote until `n_votes`.

    Each page is recorded as if posted in a Discord channel (guilds round-robin), its
    colorings as the bot's reply message, and each vote as a reaction on that message
    (`db.cast_vote`, like the bot's listener). A share `move_share` of voters first
    react to another coloring and then change their mind (the vote moves). Votes per
    page follow `vote_counts(spread, cap=max_per_page)`; a voter votes at most once per
    page. A taste that needs truth (`faithful`) needs pages with `truth`.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    population = as_population(taste)
    if population.needs_truth and any(p.truth is None for p in pages):
        raise ValueError("this taste compares with the true colors: give pages with truth")
    counts = vote_counts(n_votes, len(pages), np.random.default_rng(seed + 7919),
                         cap=max_per_page, spread=spread)
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
    report = SimulationReport(taste=population.to_dict())
    share_sum = np.zeros(len(members))
    taste_sum: dict[str, list[float]] = {m.name: [] for m in members}
    best_votes = 0
    favourites: dict[str, int] = {m.name: 0 for m in members}
    message = 9_000_000_000 + seed * 1_000_000  # fake Discord message ids

    n_used = sum(1 for c in counts if c > 0)
    for start in range(0, n_used, batch_pages):
        if report.votes >= n_votes:
            break
        chunk = pages[start : min(start + batch_pages, n_used)]
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
            report.page_sources[page_id] = src.source
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
            feats = np.stack([taste_features(colored[m.name], src.truth) for m in members])
            truth = population.choice_probabilities(feats)
            for m, score in zip(members, truth, strict=True):
                taste_sum[m.name].append(float(score))
            report.page_values[page_id] = {
                m.name: float(v) for m, v in zip(members, truth, strict=True)
            }
            favourite = members[int(np.argmax(truth))].name
            favourites[favourite] += 1
            pool = by_guild[guild]
            wanted = counts[start + k]
            share_sum += wanted * truth
            report.votes_per_page[wanted] = report.votes_per_page.get(wanted, 0) + 1
            chosen = rng.choice(len(pool), size=min(wanted, len(pool)), replace=False)
            for vi in chosen:
                if report.votes >= n_votes:
                    break
                voter = pool[int(vi)]
                pick = voter.choose(feats, None, rng)
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
    report.taste_favourite_share = {
        m.name: float(v) for m, v in zip(members, share_sum / max(1.0, share_sum.sum()),
                                         strict=True)
    }
    report.seconds = time.perf_counter() - t0
    return report

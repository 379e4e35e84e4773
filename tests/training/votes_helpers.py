"""Tiny fake colorings and votes for the learning-from-votes tests (no network needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage as ndi
from skimage import color as skcolor

from training.simulate import HiddenTaste, make_voters, synthetic_page, taste_features

# Fake "members": each fills regions around its own hue with its own chroma.
STYLES = {"sunny": (60.0, 55.0), "rosy": (20.0, 35.0), "leafy": (140.0, 30.0), "icy": (240.0, 40.0)}


def fake_coloring(page: Image.Image, hue_deg: float, chroma: float, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    gray = np.asarray(page.convert("L"), dtype=np.float32)
    labels, n = ndi.label(gray > 128)
    lab = np.zeros((*gray.shape, 3), dtype=np.float32)
    lab[..., 0] = np.where(gray > 128, 75.0, 10.0)
    for k in range(1, n + 1):
        h = math.radians(hue_deg + rng.normal(0, 25))
        c = max(0.0, chroma + rng.normal(0, 10))
        region = labels == k
        lab[region, 1] = c * math.cos(h)
        lab[region, 2] = c * math.sin(h)
    rgb = np.clip(skcolor.lab2rgb(lab), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def fake_votes(n_pages: int, votes_per_page: int, taste: HiddenTaste, seed: int = 0, size=48):
    """pages, colorings[page][member], and vote pairs (page, winner member, loser member)."""
    rng = np.random.default_rng(seed)
    voters = make_voters(taste, votes_per_page, guilds=[1], seed=seed)
    pages, colorings, pairs = [], [], []
    names = list(STYLES)
    for p in range(n_pages):
        page = synthetic_page(seed * 1000 + p, size)
        cols = {m: fake_coloring(page, *STYLES[m], seed=p * 10 + k) for k, m in enumerate(names)}
        feats = np.stack([taste_features(cols[m]) for m in names])
        for voter in voters:
            won = voter.choose(feats, taste.temperature, rng)
            pairs += [(p, names[won], names[j]) for j in range(len(names)) if j != won]
        pages.append(page)
        colorings.append(cols)
    return pages, colorings, pairs


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets on a shared 2-core machine run faster on one thread than fighting for two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


EMOJIS = {"sunny": "🌞", "rosy": "🌹", "leafy": "🍀", "icy": "🧊"}


def tiny_family(root, names=tuple(STYLES), seed: int = 0):
    """A family folder of tiny random U-Nets (the real registry format), one per name."""
    from models.family import Family, FamilyMember, save_weights
    from models.unet import UNet, UNetConfig

    members = []
    for k, name in enumerate(names):
        torch.manual_seed(seed + k)
        cfg = UNetConfig(out_channels=3, base_channels=4, depth=2, max_channels=8)
        sha = save_weights(UNet(cfg), root / f"{name}.safetensors")
        members.append(
            FamilyMember(
                name=name,
                emoji=EMOJIS[name],
                description=f"tiny test member {name}",
                architecture="unet",
                config=cfg.to_dict(),
                weights=f"{name}.safetensors",
                work_size=48,
                weights_sha256=sha,
            )
        )
    family = Family(root, members)
    family.save_manifest()
    return Family.load(root)


def fake_colorize(images, seed: int = 0):
    """What `simulate_votes` takes as `colorize`: every STYLES member, no networks."""
    return [
        {m: fake_coloring(img, *STYLES[m], seed=seed + i * 7 + k) for k, m in enumerate(STYLES)}
        for i, img in enumerate(images)
    ]

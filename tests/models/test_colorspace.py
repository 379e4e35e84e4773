"""models/colorspace.py agrees with scikit-image and keeps strength inside sRGB."""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, lab2rgb, rgb2lab

from models.colorspace import (
    denormalize_lab,
    in_gamut,
    lab_to_rgb,
    normalize_lab,
    rgb_to_lab,
    scale_chroma,
)


def _random_rgb(n: int = 4096, seed: int = 0) -> np.ndarray:
    rgb = np.random.default_rng(seed).random((n, 3))
    rgb[:8] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1],
               [1, 0, 1]]
    return rgb


def _as_image(rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rows.T.reshape(3, 64, -1).astype(np.float64))


def test_rgb_to_lab_matches_skimage():
    rgb = _random_rgb()
    ours = rgb_to_lab(_as_image(rgb)).reshape(3, -1).T.numpy()
    theirs = rgb2lab(rgb[None])[0]
    assert deltaE_ciede2000(ours, theirs).max() < 0.5


def test_lab_to_rgb_matches_skimage():
    lab = rgb2lab(_random_rgb(seed=1)[None])[0]
    ours = lab_to_rgb(_as_image(lab)).reshape(3, -1).T.numpy()
    theirs = lab2rgb(lab[None])[0]
    assert deltaE_ciede2000(rgb2lab(ours[None])[0], rgb2lab(theirs[None])[0]).max() < 0.5


def test_float32_roundtrip_is_close():
    rgb = torch.rand(2, 3, 16, 16)
    back = lab_to_rgb(rgb_to_lab(rgb))
    assert (back - rgb).abs().max() < 2e-3


def test_network_scaling_roundtrip():
    lab = rgb_to_lab(torch.rand(3, 8, 8))
    x = normalize_lab(lab)
    assert x.abs().max() <= 1.0 + 1e-6
    assert torch.allclose(denormalize_lab(x), lab, atol=1e-4)


def _chroma(lab: torch.Tensor) -> torch.Tensor:
    return lab[1:].pow(2).sum(0).sqrt()


def test_strength_increases_chroma_and_stays_in_gamut():
    lab = rgb_to_lab(torch.rand(3, 32, 32) * 0.5 + 0.25)  # moderate colors
    strong = scale_chroma(lab, 2.0)
    assert bool(in_gamut(strong).all())
    assert bool((_chroma(strong) >= _chroma(lab) - 1e-3).all())
    assert _chroma(strong).mean() > 1.3 * _chroma(lab).mean()
    assert torch.equal(strong[0], lab[0])  # lightness kept
    # Hue kept: a/b only rescaled by a non-negative factor.
    cross = lab[1] * strong[2] - lab[2] * strong[1]
    assert cross.abs().max() < 1e-2


def test_strength_zero_is_gray():
    lab = rgb_to_lab(torch.rand(3, 4, 4))
    assert scale_chroma(lab, 0.0)[1:].abs().max() == 0

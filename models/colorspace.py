"""sRGB <-> CIE LAB (D65, 2° observer) on torch batches, and the network scaling.

The formulas are the standard ones scikit-image's `rgb2lab`/`lab2rgb` implement, so
results agree with it (tests check ΔE2000 < 0.5 on random colors). Channels are on
dim -3, so (3, H, W) and (B, 3, H, W) both work.
"""

from __future__ import annotations

import torch

# sRGB (linear) -> XYZ, D65.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883])
_EPS = 0.008856
_KAPPA = 7.787


def _apply_matrix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # x: (..., 3, H, W); contract the channel dim with the 3x3 matrix.
    m = matrix.to(dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _channel_view(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(dtype=like.dtype, device=like.device).view(3, 1, 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> LAB (L in [0, 100], a/b about ±110)."""
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _apply_matrix(_RGB_TO_XYZ, linear) / _channel_view(_WHITE_D65, rgb)
    f = torch.where(xyz > _EPS, xyz.clamp_min(_EPS) ** (1.0 / 3.0), _KAPPA * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    y = xyz.select(-3, 1)
    lightness = torch.where(y > _EPS, 116.0 * fy - 16.0, 903.3 * y)
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((lightness, a, b), dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """LAB, shape (..., 3, H, W) -> sRGB in [0, 1] (out-of-gamut colors clipped)."""
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / _KAPPA)
    xyz = xyz * _channel_view(_WHITE_D65, lab)
    linear = _apply_matrix(_XYZ_TO_RGB, xyz).clamp_min(0.0)
    rgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055, 12.92 * linear
    )
    return rgb.clamp(0.0, 1.0)


# pix2pix's colorization scaling: the networks see and predict values in about [-1, 1].
def normalize_lab(lab: torch.Tensor) -> torch.Tensor:
    """LAB -> network scale: L/50 - 1, ab/110."""
    lightness, ab = lab[..., :1, :, :], lab[..., 1:, :, :]
    return torch.cat((lightness / 50.0 - 1.0, ab / 110.0), dim=-3)


def denormalize_lab(x: torch.Tensor) -> torch.Tensor:
    """Network scale -> LAB. Accepts 3 channels (L, a, b)."""
    lightness, ab = x[..., :1, :, :], x[..., 1:, :, :]
    return torch.cat(((lightness + 1.0) * 50.0, ab * 110.0), dim=-3)


def normalize_l(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> [-1, 1]."""
    return lightness / 50.0 - 1.0


def keep_lines(page_l: torch.Tensor, fill_l: torch.Tensor) -> torch.Tensor:
    """The line-art compositing rule, defined once for serving, training and retraining:
    a colored pixel is never lighter than the page there, L = min(page L, fill L), so
    the drawing's lines (and its anti-aliased edges) show through any fill. Both in the
    same scale (L* or network scale)."""
    return torch.minimum(page_l, fill_l)


def scale_chroma(lab: torch.Tensor, strength: float) -> torch.Tensor:
    """Multiply a/b by `strength`, then pull each pixel back inside the sRGB gamut.

    Out-of-gamut pixels get their chroma reduced (hue and L kept) by bisection on the
    chroma factor, so a strong `strength` saturates colors without hue shifts.
    """
    lightness, ab = lab[..., :1, :, :], lab[..., 1:, :, :] * strength
    lo = torch.zeros_like(lightness)
    hi = torch.ones_like(lightness)
    # Factor 1 is fine where the color already is in gamut: skip the search there.
    inside = _in_gamut(torch.cat((lightness, ab), dim=-3))
    lo = torch.where(inside, hi, lo)
    for _ in range(12):
        mid = (lo + hi) / 2
        ok = _in_gamut(torch.cat((lightness, ab * mid), dim=-3))
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    return torch.cat((lightness, ab * lo), dim=-3)


def in_gamut(lab: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    """(..., 1, H, W) bool: whether each LAB pixel is an sRGB color (within `tol`)."""
    return _in_gamut(lab, tol)


def _in_gamut(lab: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=-3)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16.0 / 116.0) / _KAPPA)
    xyz = xyz * _channel_view(_WHITE_D65, lab)
    linear = _apply_matrix(_XYZ_TO_RGB, xyz)
    ok = ((linear >= -tol) & (linear <= 1.0 + tol)).all(dim=-3, keepdim=True)
    return ok

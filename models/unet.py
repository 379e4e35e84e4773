"""The encoder-decoder colorizer: a small U-Net from page lightness to LAB.

Input is the page's L channel scaled to [-1, 1]; output is LAB in network scale
(L/50 - 1, ab/110), 3 channels for line-art members (full LAB: at L = 100 no a/b is a
visible color, so lightness must be predicted too) or 2 for photo members (a, b; the
photo's own L is kept).

The a/b head is either a regression (tanh) or, with `ab_bins > 0`, a classification
over a grid of a/b cells decoded by the annealed mean (Zhang et al., "Colorful Image
Colorization"): L1 regression averages plausible colors into brown, classification
keeps them vivid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class UNetConfig:
    in_channels: int = 1  # page lightness
    out_channels: int = 3  # 3: L, a, b (line art); 2: a, b (photos keep their L)
    base_channels: int = 16  # width of the first level; doubles per level
    depth: int = 4  # number of 2x downsamplings; inputs are padded to 2**depth
    max_channels: int = 128  # cap on the width of deep levels
    ab_bins: int = 0  # cells per axis of the a/b grid for a classification head; 0 = regression
    ab_temperature: float = 0.38  # annealed-mean temperature for the classification head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConvBlock(nn.Module):
    """conv3x3 -> BN -> LeakyReLU, twice; the first conv may stride 2 to go down a level."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.1, inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class UpBlock(nn.Module):
    """Bilinear 2x upsample, concatenate the skip connection, then a ConvBlock."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.block = ConvBlock(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        out: torch.Tensor = self.block(torch.cat((x, skip), dim=1))
        return out


def ab_bin_centers(bins: int) -> torch.Tensor:
    """(bins*bins, 2) a/b cell centers in network scale (ab/110), row-major over (a, b)."""
    edges = torch.linspace(-1.0, 1.0, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    a, b = torch.meshgrid(centers, centers, indexing="ij")
    return torch.stack((a.reshape(-1), b.reshape(-1)), dim=1)


class UNet(nn.Module):
    ab_centers: torch.Tensor  # (Q, 2) buffer, only with `ab_bins > 0`

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.depth + 1)]
        self.stem = ConvBlock(cfg.in_channels, widths[0])
        self.downs = nn.ModuleList(
            ConvBlock(widths[i], widths[i + 1], stride=2) for i in range(cfg.depth)
        )
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], widths[i], widths[i]) for i in reversed(range(cfg.depth))
        )
        predicts_l = cfg.out_channels == 3
        self.l_head = nn.Conv2d(widths[0], 1, 1) if predicts_l else None
        if cfg.ab_bins > 0:
            self.ab_head = nn.Conv2d(widths[0], cfg.ab_bins * cfg.ab_bins, 1)
            self.register_buffer("ab_centers", ab_bin_centers(cfg.ab_bins), persistent=False)
        else:
            self.ab_head = nn.Conv2d(widths[0], 2, 1)

    @property
    def classifies_ab(self) -> bool:
        return self.cfg.ab_bins > 0

    def features(self, lightness: torch.Tensor) -> torch.Tensor:
        # lightness: (B, 1, H, W) in [-1, 1]; H and W any size (padded inside).
        h, w = lightness.shape[-2:]
        m = 2**self.cfg.depth
        pad_h, pad_w = (-h) % m, (-w) % m
        x = lightness
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips: list[torch.Tensor] = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return x[..., :h, :w]  # (B, C0, H, W)

    def heads(self, feats: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(L in network scale (B, 1, H, W) or None, a/b: (B, 2, H, W) or logits (B, Q, H, W))."""
        lightness = torch.tanh(self.l_head(feats)) if self.l_head is not None else None
        ab = self.ab_head(feats)
        if not self.classifies_ab:
            ab = torch.tanh(ab)
        return lightness, ab

    def decode_ab(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean of the a/b distribution: (B, Q, H, W) logits -> (B, 2, H, W)."""
        probs = torch.softmax(logits.float() / self.cfg.ab_temperature, dim=1)
        centers = self.ab_centers.to(probs.dtype)  # (Q, 2)
        return torch.einsum("bqhw,qc->bchw", probs, centers)

    def annealed_ab(self, feats: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """a/b head + annealed mean from features: (B, C0, H, W) -> (B, 2, H, W).

        Same result as `decode_ab(heads(feats)[1])`, computed per pixel on the last
        dimension and, on the CPU, `chunk` pixels at a time: the (pixels, Q) logits of
        a whole batch do not fit in cache, and materializing them made a batch of 8
        pages cost twice as much per page as one page.
        """
        b, c, h, w = feats.shape
        t = self.cfg.ab_temperature
        weight = self.ab_head.weight.flatten(1) / t  # (Q, C0)
        assert self.ab_head.bias is not None  # nn.Conv2d's default bias=True
        bias = self.ab_head.bias / t  # (Q,)
        centers = self.ab_centers.float()  # (Q, 2)
        pixels = feats.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C0)
        if feats.device.type != "cpu":
            chunk = pixels.shape[0]  # GPUs have the memory and want one big kernel
        out = torch.empty(pixels.shape[0], 2, dtype=torch.float32, device=feats.device)
        for start in range(0, pixels.shape[0], chunk):
            logits = F.linear(pixels[start : start + chunk], weight, bias)  # (n, Q)
            out[start : start + chunk] = torch.softmax(logits.float(), dim=-1) @ centers
        return out.view(b, h, w, 2).permute(0, 3, 1, 2)  # (B, 2, H, W)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) page L in [-1, 1] -> (B, out_channels, H, W) LAB in network scale."""
        feats = self.features(lightness)
        if self.classifies_ab:
            pred_l = torch.tanh(self.l_head(feats)) if self.l_head is not None else None
            ab = self.annealed_ab(feats)
        else:
            pred_l, ab = self.heads(feats)
        if pred_l is None:
            return ab  # (B, 2, H, W) a, b
        return torch.cat((pred_l.to(ab.dtype), ab), dim=1)  # (B, 3, H, W) L, a, b

"""pix2pix's networks, for the GAN members: a U-Net generator and a PatchGAN judge.

The generator maps page L (B, 1, H, W) in [-1, 1] to LAB in network scale, like
`models.unet.UNet`; the discriminator ("the judge of how good the coloring is, e.g.
inside the lines") scores overlapping patches of (page L, coloring) pairs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class GeneratorConfig:
    in_channels: int = 1  # page lightness
    out_channels: int = 3  # 3: L, a, b; 2: a, b
    base_channels: int = 16  # ngf in pix2pix (64 there; small here for CPU)
    depth: int = 6  # number of stride-2 levels; inputs are padded to 2**depth
    max_channels: int = 128  # cap on deep levels (pix2pix: 8 * ngf)
    dropout: float = 0.5  # dropout in the three innermost decoder levels, as in pix2pix

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DiscriminatorConfig:
    in_channels: int = 4  # page L + the coloring's channels (3 for full LAB)
    base_channels: int = 32  # ndf (64 in pix2pix)
    n_layers: int = 3  # 3 gives pix2pix's 70x70 receptive field

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Down(nn.Module):
    """conv4x4 stride 2 -> (BN) -> LeakyReLU(0.2): halves H and W."""

    def __init__(self, cin: int, cout: int, norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class Up(nn.Module):
    """transposed conv4x4 stride 2 -> BN -> (dropout) -> ReLU: doubles H and W."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x)
        return out


class Pix2PixGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.depth)]
        # Encoder: widths[0] at H/2 ... widths[-1] at H/2**depth (the bottleneck).
        self.downs = nn.ModuleList(
            Down(
                cfg.in_channels if i == 0 else widths[i - 1],
                widths[i],
                norm=0 < i < cfg.depth - 1,  # pix2pix: no norm on the outermost/innermost
            )
            for i in range(cfg.depth)
        )
        # Decoder mirrors it; level i (from the bottom) takes its input + the skip.
        ups = []
        for i in reversed(range(1, cfg.depth)):
            cin = widths[i] if i == cfg.depth - 1 else widths[i] * 2
            drop = cfg.dropout if i >= cfg.depth - 3 else 0.0
            ups.append(Up(cin, widths[i - 1], dropout=drop))
        self.ups = nn.ModuleList(ups)
        self.out = nn.ConvTranspose2d(widths[0] * 2, cfg.out_channels, 4, stride=2, padding=1)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) page L in [-1, 1] -> (B, out_channels, H, W) LAB in network scale."""
        h, w = lightness.shape[-2:]
        m = 2**self.cfg.depth
        pad_h, pad_w = (-h) % m, (-w) % m
        x = lightness
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for up in self.ups:
            x = torch.cat((up(x), skips.pop()), dim=1)
        return torch.tanh(self.out(x))[..., :h, :w]


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [Down(cfg.in_channels, cfg.base_channels, norm=False)]
        width = cfg.base_channels
        for i in range(1, cfg.n_layers):
            nxt = min(cfg.base_channels * 2**i, cfg.base_channels * 8)
            layers.append(Down(width, nxt))
            width = nxt
        nxt = min(width * 2, cfg.base_channels * 8)
        layers += [
            nn.Conv2d(width, nxt, 4, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(nxt),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(nxt, 1, 4, stride=1, padding=1),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, page_l: torch.Tensor, coloring: torch.Tensor) -> torch.Tensor:
        """(B,1,H,W) page L + (B,C,H,W) coloring, network scale -> (B,1,h,w) patch logits."""
        logits: torch.Tensor = self.body(torch.cat((page_l, coloring), dim=1))
        return logits

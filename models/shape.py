"""What a drawing is: a learned shape embedding for recall, and the page's ink frame.

Two coloring pages of the same thing (a frog drawn by two different emoji sets, say)
have lines in different places, but they are the same frog. `ShapeEncoder` maps a page's
ink to a unit vector such that the same thing drawn differently lands close, trained
contrastively on the same emoji drawn by several sets (`training/shape.py`). A member's
memory (`models/memory.py`) recalls its look-alike pictures by this vector.

Both the embedding and the memory's color maps live in the page's **ink frame**: the
square around the drawing's ink (not the sheet), so a small drawing in the middle of a
big sheet lines up with a picture that fills its canvas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

VIEW = 64  # side of the ink view the encoder sees
INK = 0.3  # ink (1 - L/100) above this counts when framing the drawing
MARGIN = 0.04  # the frame's margin around the ink, as a share of its side


@dataclass(frozen=True)
class Frame:
    """A square of the page around its drawing, in page pixels (may reach past edges)."""

    top: float
    left: float
    side: float

    def to_frame(self, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Page pixel coordinates -> [0, 1) coordinates inside the frame."""
        return (y - self.top) / self.side, (x - self.left) / self.side


def ink_frame(lightness: np.ndarray) -> Frame:
    """The square frame around a page's ink, from its L (H, W) in [0, 100]."""
    h, w = lightness.shape
    ink = lightness < (1.0 - INK) * 100.0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        side = float(max(h, w))
        return Frame((h - side) / 2.0, (w - side) / 2.0, side)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(y1 - y0, x1 - x0) * (1.0 + 2.0 * MARGIN)
    side = max(side, 8.0)
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    return Frame(cy - side / 2.0, cx - side / 2.0, float(side))


def crop_frame(image: torch.Tensor, frame: Frame, size: int, fill: float) -> torch.Tensor:
    """(C, H, W) float image -> (C, size, size): the frame, area-averaged, `fill` outside."""
    c, h, w = image.shape
    top, left = int(np.floor(frame.top)), int(np.floor(frame.left))
    side = max(1, int(np.ceil(frame.side)))
    canvas = torch.full((c, side, side), fill, dtype=image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + side, h), min(left + side, w)
    if y1 > y0 and x1 > x0:
        canvas[:, y0 - top:y1 - top, x0 - left:x1 - left] = image[:, y0:y1, x0:x1]
    return F.adaptive_avg_pool2d(canvas[None], (size, size))[0]


def ink_view(lightness: np.ndarray, frame: Frame | None = None) -> np.ndarray:
    """(VIEW, VIEW) float32 ink in [0, 1] inside the page's ink frame."""
    frame = frame or ink_frame(lightness)
    ink = 1.0 - torch.from_numpy(np.clip(lightness, 0.0, 100.0).astype(np.float32)) / 100.0
    return crop_frame(ink[None], frame, VIEW, 0.0)[0].numpy()


@dataclass(frozen=True)
class ShapeConfig:
    width: int = 16  # channels of the stem; doubled at each of three stages
    dim: int = 128  # embedding size


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ShapeEncoder(nn.Module):
    """(B, 1, VIEW, VIEW) ink -> (B, dim) unit vectors: a small CNN (0.85 M parameters,
    ~11 M multiply-adds per page) that reaches a 4 x 4 grid, then two linear layers."""

    def __init__(self, cfg: ShapeConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or ShapeConfig()
        w = self.cfg.width
        layers = _conv(1, w, 2)  # 32 x 32
        for cin, cout in ((w, w * 2), (w * 2, w * 4), (w * 4, w * 8)):  # 16, 8, 4
            layers += _conv(cin, cout, 2) + _conv(cout, cout)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(w * 8 * 16, 256),
                                  nn.ReLU(inplace=True), nn.Linear(256, self.cfg.dim))

    def forward(self, ink: torch.Tensor) -> torch.Tensor:
        x = self.features(ink)
        x = F.adaptive_avg_pool2d(x, 4)
        return F.normalize(self.head(x), dim=1)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)

    @torch.no_grad()
    def embed(self, views: np.ndarray) -> np.ndarray:
        """(N, VIEW, VIEW) or (VIEW, VIEW) ink views -> (N, dim) or (dim,) float32."""
        single = views.ndim == 2
        x = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32))
        x = x[None, None] if single else x[:, None]
        was_training = self.training
        self.eval()
        out = torch.cat([self(chunk) for chunk in torch.split(x, 512)]).numpy()
        self.train(was_training)
        return out[0] if single else out

"""Draw the example pages in `examples/` (no downloads, nothing copyrighted).

    python -m models.make_examples

- house.png     line art, landscape: a house, a sun, a tree, hills and a fence
- flower.png    line art, portrait: a flower in a pot, with a small gap in one line
- spheres.jpg   grayscale "photo": shaded spheres on a gradient floor, with grain
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parents[1] / "examples"
INK = 0
W = 4  # line width


def house(size: tuple[int, int] = (800, 560)) -> Image.Image:
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    w, h = size
    d.line([(0, 400), (w, 400)], fill=INK, width=W)  # horizon
    d.arc((-200, 300, 420, 620), 180, 360, fill=INK, width=W)  # hill
    d.arc((380, 330, 1000, 650), 180, 360, fill=INK, width=W)
    d.rectangle((260, 250, 500, 460), fill=255, outline=INK, width=W)  # house
    d.polygon([(240, 252), (380, 130), (520, 252)], fill=255, outline=INK, width=W)  # roof
    d.rectangle((350, 360, 410, 460), outline=INK, width=W)  # door
    d.ellipse((393, 405, 401, 413), fill=INK)
    for x0 in (285, 430):  # windows with crosses
        d.rectangle((x0, 285, x0 + 50, 335), outline=INK, width=W)
        d.line([(x0 + 25, 285), (x0 + 25, 335)], fill=INK, width=3)
        d.line([(x0, 310), (x0 + 50, 310)], fill=INK, width=3)
    d.ellipse((620, 40, 730, 150), outline=INK, width=W)  # sun
    for k in range(12):
        a = k * math.pi / 6
        c = (675 + 70 * math.cos(a), 95 + 70 * math.sin(a))
        e = (675 + 100 * math.cos(a), 95 + 100 * math.sin(a))
        d.line([c, e], fill=INK, width=3)
    d.rectangle((105, 300, 135, 420), fill=255, outline=INK, width=W)  # tree
    d.ellipse((50, 170, 190, 310), fill=255, outline=INK, width=W)
    d.ellipse((40, 60, 230, 120), outline=INK, width=W)  # cloud
    for x in range(540, 780, 40):  # fence
        d.rectangle((x, 420, x + 24, 500), fill=255, outline=INK, width=3)
    d.line([(540, 445), (780, 445)], fill=INK, width=3)
    d.rectangle((1, 1, w - 2, h - 2), outline=INK, width=2)
    return im.convert("RGB")


def flower(size: tuple[int, int] = (480, 720)) -> Image.Image:
    im = Image.new("L", size, 255)
    d = ImageDraw.Draw(im)
    cx, cy = 240, 230
    for k in range(8):
        a = k * math.pi / 4
        x, y = cx + 95 * math.cos(a), cy + 95 * math.sin(a)
        d.ellipse((x - 55, y - 55, x + 55, y + 55), outline=INK, width=W)
    d.ellipse((cx - 60, cy - 60, cx + 60, cy + 60), fill=255, outline=INK, width=W)
    d.line([(cx, cy + 150), (cx, 520)], fill=INK, width=W)  # stem
    d.ellipse((cx - 110, 380, cx - 5, 430), outline=INK, width=W)  # leaves
    d.ellipse((cx + 5, 420, cx + 110, 470), outline=INK, width=W)
    d.polygon([(130, 520), (350, 520), (320, 690), (160, 690)], outline=INK, width=W)  # pot
    d.line([(130, 560), (350, 560)], fill=INK, width=W)
    d.rectangle((236, 610, 244, 616), fill=255)  # a 6-pixel gap: region fill closes it
    d.line([(150, 610), (236, 610)], fill=INK, width=W)
    d.line([(244, 610), (330, 610)], fill=INK, width=W)
    return im.convert("RGB")


def spheres(size: tuple[int, int] = (640, 480), seed: int = 0) -> Image.Image:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 60 + 120 * (yy / h)  # floor/wall gradient
    light = np.array([-0.5, -0.6, 0.62])
    light /= np.linalg.norm(light)
    for cx, cy, r in ((200, 250, 120), (450, 300, 90), (560, 150, 50)):
        dx, dy = (xx - cx) / r, (yy - cy) / r
        inside = dx**2 + dy**2 < 1
        dz = np.sqrt(np.clip(1 - dx**2 - dy**2, 0, 1))
        shade = np.clip(dx * light[0] + dy * light[1] + dz * light[2], 0, 1)
        shadow = ((xx - cx - 0.5 * r) / (1.1 * r)) ** 2 + ((yy - cy - r) / (0.25 * r)) ** 2 < 1
        img = np.where(shadow & ~inside, img * 0.6, img)
        img = np.where(inside, 40 + 200 * shade**1.5, img)
    img += np.random.default_rng(seed).normal(0, 4, size=img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="L").convert("RGB")


def main() -> None:
    house().convert("L").save(HERE / "house.png", optimize=True)
    flower().convert("L").save(HERE / "flower.png", optimize=True)
    spheres().convert("L").save(HERE / "spheres.jpg", quality=88)


if __name__ == "__main__":
    main()

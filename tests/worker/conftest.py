"""A tiny family and a controllable colorizing core for the worker's tests.

`FakeBackend` plays the colorizing core (the `Backend` the engine takes) around a real
tiny `Family`: its `run_member` stacks the batch and runs the member's real (tiny)
network once, so batching is real, and tests can hold batches at a gate, slow them
down, or make a member fail.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from models.family import Family, FamilyMember, save_weights
from models.unet import UNet, UNetConfig
from models.worker.engine import LoadedFamily, member_info

TINY = {"base_channels": 4, "depth": 2, "max_channels": 8}
MEMBERS = (("openmoji", "😀"), ("fluent", "🌈"))


def build_tiny_family(root: Path, version: int = 1) -> Family:
    """A family of two tiny U-Net members under `root` (manifest + safetensors)."""
    members = []
    for index, (name, emoji) in enumerate(MEMBERS):
        torch.manual_seed(index)
        config = UNetConfig(**TINY)
        weights = f"{name}-v{version}.safetensors"
        sha = save_weights(UNet(config), root / weights)
        members.append(
            FamilyMember(
                name=name, emoji=emoji, description=f"tiny {name}", architecture="unet",
                config=config.to_dict(), weights=weights, version=version, work_size=32,
                weights_sha256=sha,
            )
        )
    family = Family(root, members)
    family.save_manifest()
    return family


@pytest.fixture
def family_dir(tmp_path: Path) -> Path:
    build_tiny_family(tmp_path / "family")
    return tmp_path / "family"


def page_png(width: int = 48, height: int = 40, seed: int = 0) -> bytes:
    """A little black-on-white line drawing, as PNG bytes."""
    rng = np.random.default_rng(seed)
    pixels = np.full((height, width), 255, np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, height), rng.integers(0, width)
        pixels[y, :] = 0
        pixels[:, x] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class FakePage:
    lightness: torch.Tensor  # (1, 32, 32) in [-1, 1]
    size: tuple[int, int]
    kind: str = "lineart"
    seed: int | None = None  # like PreparedPage: steers only this page's compositing


class FakeColorizer:
    def __init__(self, family: Family, device: str, backend: FakeBackend) -> None:
        self.family = family
        self.device = device
        self.backend = backend

    def prepare(self, image: Image.Image, options: Any) -> FakePage:
        gray = np.asarray(image.convert("L").resize((32, 32)), np.float32)
        seed = options.get("seed") if isinstance(options, dict) else None
        return FakePage(torch.from_numpy(gray / 127.5 - 1.0)[None], image.size, seed=seed)

    def run_member(self, name: str, pages: list[FakePage]) -> list[Image.Image]:
        backend = self.backend
        backend.batch_started.set()
        if not backend.gate.wait(timeout=30):
            raise TimeoutError("test gate never opened")
        if backend.delay_s:
            time.sleep(backend.delay_s)
        with backend.lock:
            backend.batches.append((name, len(pages), self))
        if name in backend.failing:
            raise RuntimeError(f"{name} exploded")
        net = self.family.network(name, self.device)
        with torch.inference_mode():
            lab = net(torch.stack([p.lightness for p in pages]))  # (B, 3, 32, 32)
        out = []
        for page, pred in zip(pages, lab, strict=True):
            shade = int((pred[1].mean().item() + 1) * 100) % 256
            # Another seed, another plausible coloring (the green channel here).
            green = 128 if page.seed is None else page.seed % 251
            out.append(Image.new("RGB", page.size, (shade, green, 255 - shade)))
        return out


class FakeBackend:
    """The engine's colorizing core, with knobs: a gate, a delay, failing members."""

    def __init__(self) -> None:
        from models.images import PageError

        self.page_errors = (PageError,)
        self.gate = threading.Event()
        self.gate.set()
        self.batch_started = threading.Event()
        self.delay_s = 0.0
        self.failing: set[str] = set()
        self.lock = threading.Lock()
        self.batches: list[tuple[str, int, FakeColorizer]] = []
        self.options_seen: list[dict[str, Any]] = []  # what each page was prepared with
        self.loads = 0

    def load(self, family_path: str | None, device: str) -> LoadedFamily:
        family = Family.load(family_path)
        self.loads += 1
        return LoadedFamily(
            FakeColorizer(family, device, self),
            [member_info(m) for m in family.members],
            family.root / "manifest.json",
        )

    def check_member(self, colorizer: FakeColorizer, name: str) -> None:
        colorizer.family.network(name, colorizer.device)  # loads (and checks) the weights

    def options(self, strength: float, fill: bool | None, kind: str,
                seed: int | None = None) -> dict[str, Any]:
        options = {"strength": strength, "fill": fill, "kind": kind, "seed": seed}
        with self.lock:
            self.options_seen.append(options)
        return options

    def load_page(self, data: bytes) -> Image.Image:
        from models.images import load_page

        return load_page(data)

    def predict(self, colorizer: FakeColorizer, name: str, pages: list[Any]) -> list[Any]:
        return colorizer.run_member(name, pages)

    def finish(self, colorizer: FakeColorizer, page: Any, output: Any) -> Any:
        return output

    def batch_sizes(self, member: str | None = None) -> list[int]:
        with self.lock:
            return [size for name, size, _ in self.batches if member in (None, name)]


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    yield fake
    fake.gate.set()  # never leave a batch thread blocked behind a failed test

"""The family's shared memory in the pipeline: loaded once, recalled by every member,
and a broken one never stops a member from coloring."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from models.family import Family
from models.memory import SIDE, MemberMemory, build_memory
from models.pipeline import ColorizeOptions, Colorizer
from models.registry import BUNDLED_FAMILY_DIR


def _ball(color):
    page = Image.new("L", (96, 96), 255)
    pic = Image.new("RGB", (96, 96), "white")
    for im, fill, line in ((page, None, 0), (pic, color, (0, 0, 0))):
        ImageDraw.Draw(im).ellipse((8, 8, 88, 88), fill=fill, outline=line, width=3)
    return np.asarray(page, np.float32) * (100 / 255), np.asarray(pic), "balls"


@pytest.fixture
def family_dir(tmp_path):
    root = tmp_path / "family"
    shutil.copytree(BUNDLED_FAMILY_DIR, root, ignore=shutil.ignore_patterns("*.gif", "*.md"))
    return root


def _with_shared(root, name):
    family = Family.load(root)
    for member in family.members:
        member.extra = {**member.extra, "shared_memory": name}
    family.save_manifest()
    return Family.load(root)


def test_every_member_recalls_the_one_shared_memory(family_dir):
    from training.memory import default_encoder

    own = Colorizer(Family.load(family_dir)).memory(Family.load(family_dir).get("clipart"))
    encoder = own.own.encoder if own is not None and own.own is not None else default_encoder()
    build_memory([_ball((30, 170, 40))], 15, encoder).save(family_dir / "shared.safetensors")
    family = _with_shared(family_dir, "shared.safetensors")
    colorizer = Colorizer(family)
    first = colorizer.memory(family.get("clipart"))
    second = colorizer.memory(family.get("fluent"))
    assert isinstance(first, MemberMemory) and first.shared is not None
    assert first.shared is second.shared  # one file, loaded once
    page = Image.fromarray((_ball((0, 0, 0))[0] * 2.55).astype(np.uint8)).convert("RGB")
    out = colorizer.run_member("clipart", [colorizer.prepare(page, ColorizeOptions())])[0]
    assert out.size == page.size


def test_an_unreadable_shared_memory_leaves_the_members_own(family_dir, caplog):
    save_file({"cells": torch.zeros(1, SIDE, SIDE, dtype=torch.uint8)},
              str(family_dir / "old.safetensors"), metadata={"bins": "15"})
    family = _with_shared(family_dir, "old.safetensors")
    colorizer = Colorizer(family)
    memory = colorizer.memory(family.get("openmoji"))
    assert memory is not None and memory.shared is None and memory.own is not None
    assert "older colorbot" in caplog.text
    page = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(page).ellipse((8, 8, 56, 56), outline=(0, 0, 0), width=2)
    out = colorizer.run_member("openmoji", [colorizer.prepare(page, ColorizeOptions())])[0]
    assert out.size == (64, 64)

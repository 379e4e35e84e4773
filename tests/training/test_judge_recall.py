"""The judge recalls what similar drawings really looked like (`RecallMemory`).

Things are synthetic drawings, each with its own two true colors (left and right half
of the drawing): no global taste tells them apart, only knowing the thing does. The
memory holds each thing drawn once; the voted pages draw it again at another size and
place on the sheet (the ink frame lines them up) or in mirror image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.memory import build_memory
from models.shape import ShapeConfig, ShapeEncoder
from models.unet import UNet, UNetConfig
from tests.training.votes_helpers import one_thread  # noqa: F401
from training.judge import (
    BackboneJudge,
    BackboneJudgeConfig,
    JudgeTrainConfig,
    PairData,
    RecallMemory,
    judge_inputs,
    load_judge,
    save_judge,
    train_backbone_judge,
)
from training.simulate import truth_distance

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 48
NET = UNetConfig(out_channels=3, base_channels=4, depth=2, max_channels=8, ab_bins=5)
PALETTE = np.array([(220, 40, 40), (40, 170, 60), (40, 80, 220), (240, 200, 30),
                    (160, 60, 200), (30, 200, 200), (250, 130, 20), (120, 70, 30)])


def _shapes(thing: int) -> list[tuple[str, tuple[float, float, float, float]]]:
    """A thing: two to four closed shapes in the cells of a 2 x 2 grid (unit square)."""
    rng = np.random.default_rng(thing)
    out = []
    for cell in rng.permutation(4)[: rng.integers(2, 5)]:
        cy, cx = divmod(int(cell), 2)
        w, h = rng.uniform(0.25, 0.45, 2)
        x0, y0 = cx * 0.5 + rng.uniform(0.02, 0.48 - w), cy * 0.5 + rng.uniform(0.02, 0.48 - h)
        out.append((("ellipse", "rectangle")[int(rng.integers(2))], (x0, y0, x0 + w, y0 + h)))
    return out


def _colors(thing: int) -> list[tuple[int, int, int]]:
    idx = np.random.default_rng(thing + 500).choice(len(PALETTE), 4, replace=False)
    return [tuple(int(c) for c in PALETTE[i]) for i in idx]


def _draw(thing: int, side: int, colors=None) -> Image.Image:
    """The thing's line art (colors None) or a coloring of it, `side` px."""
    from PIL import ImageDraw

    img = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(img)
    for k, (kind, box) in enumerate(_shapes(thing)):
        xy = [v * (side - 1) for v in box]
        fill = None if colors is None else colors[k % len(colors)]
        getattr(draw, kind)(xy, fill=fill, outline=(0, 0, 0), width=max(2, side // 32))
    return img


def _place(img: Image.Image, canvas: int, offset: tuple[int, int]) -> Image.Image:
    out = Image.new("RGB", (canvas, canvas), "white")
    out.paste(img, offset)
    return out


def _encoder() -> ShapeEncoder:
    """The shipped shape embedding (training/base/shape.safetensors)."""
    from training.memory import SHAPE_ENCODER
    from training.shape import load_encoder

    return load_encoder(SHAPE_ENCODER)


def _memory(things: range, **kw) -> RecallMemory:
    encoder = _encoder()
    pairs = [(np.asarray(_draw(t, 64).convert("L"), dtype=np.float32) / 2.55,
              np.asarray(_draw(t, 64, _colors(t)))) for t in things]
    return RecallMemory.from_memories([build_memory(pairs, 15, encoder)], **kw)


def _voted(thing: int, variant: int, colors=None) -> Image.Image:
    """Another drawing of `thing`: bigger, elsewhere on a bigger sheet, odd variants
    in mirror image. `colors`: a coloring of it (its true colors: `_colors(thing)`)."""
    img = _place(_draw(thing, 80, colors), 112, (24 * (variant % 2), 8 * variant))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if variant % 2 else img


def _colorings(thing: int, variant: int) -> tuple[Image.Image, list[Image.Image]]:
    """The page, and four colorings of it: its true colors nearly, the same colors on
    the wrong shapes, another thing's colors, and one warm color everywhere."""
    true = _colors(thing)
    near = [tuple(min(255, c + 12) for c in rgb) for rgb in true]
    return _voted(thing, variant), [
        _voted(thing, variant, near), _voted(thing, variant, true[1:] + true[:1]),
        _voted(thing, variant, _colors(thing + 1000)),
        _voted(thing, variant, [(250, 150, 60)])]


def test_recall_finds_the_thing_in_another_size_place_and_mirror():
    memory = _memory(range(6), k=1)
    agreements, l_errors = [], []
    for thing in range(6):
        for variant in (0, 1):
            page, truth = _voted(thing, variant), _voted(thing, variant, _colors(thing))
            x = judge_inputs(page, truth, SIZE, letterbox_pages=True)[None]
            paper = x[:, :1] > 0.3
            pixel, region, conf, region_l = memory.recall_maps(x[:, :1], paper)
            assert pixel.shape == region.shape == (1, 15 * 15, SIZE, SIZE)
            assert torch.allclose(region.exp().sum(dim=1), torch.ones(1, SIZE, SIZE), atol=1e-4)
            assert float(conf) > 0.85
            # The recalled color of each shape is its true color (a mirrored page
            # recalls the remembered picture mirrored).
            ab = x[0, 2:]
            most = region[0].argmax(dim=0)  # (S, S) recalled cell
            true_cell = ((ab.clamp(-1, 1 - 1e-6) + 1) * 7.5).long()
            true_cell = true_cell[0] * 15 + true_cell[1]
            colored = paper[0, 0] & (ab.norm(dim=0) > 0.2)
            agreements.append(float((most == true_cell)[colored].float().mean()))
            # ... and so is its lightness (the memory remembers L* too).
            true_l = (x[0, 1] + 1.0) * 50.0
            l_errors.append(float((region_l[0, 0] - true_l).abs()[colored].median()))
    assert min(agreements) > 0.6 and np.mean(agreements) > 0.8, agreements
    assert np.mean(l_errors) < 10.0, l_errors


def test_recall_without_mirror_misses_mirrored_pages():
    with_mirror, without = _memory(range(6), k=1), _memory(range(6), k=1, mirror=False)
    fits = []
    for memory in (with_mirror, without):
        total = 0.0
        for thing in range(6):
            page, truth = _voted(thing, 1), _voted(thing, 1, _colors(thing))
            x = judge_inputs(page, truth, SIZE, letterbox_pages=True)[None]
            pixel, region, conf, _ = memory.recall_maps(x[:, :1], x[:, :1] > 0.3)
            from training.judge import cell_log_likelihood

            total += float(cell_log_likelihood(region, x[:, 2:]).mean())
        fits.append(total)
    assert fits[0] > fits[1] + 1.0


def _votes(things: range, variants: tuple[int, ...]):
    inputs, winners, losers, pages = [], [], [], []
    page_id = 0
    for thing in things:
        for variant in variants:
            page, cols = _colorings(thing, variant)
            truth = _voted(thing, variant, _colors(thing))
            dist = [truth_distance(c, truth) for c in cols]
            base = len(inputs)
            inputs += [judge_inputs(page, c, SIZE, letterbox_pages=True) for c in cols]
            for i in range(len(cols)):
                for j in range(len(cols)):
                    if dist[i] < dist[j]:
                        winners.append(base + i)
                        losers.append(base + j)
                        pages.append(page_id)
            page_id += 1
    return PairData(torch.stack(inputs), np.array(winners), np.array(losers), np.array(pages))


@pytest.fixture(scope="module")
def faithful():
    things = range(16)
    data = _votes(things, (0, 1))
    memory = _memory(things)
    torch.manual_seed(0)
    backbone = UNet(NET).eval()
    tc = JudgeTrainConfig(steps=120, lr=1e-2, weight_decay=1e-3, heldout_share=0.25)
    cfg = BackboneJudgeConfig(size=SIZE, backbone=NET.to_dict())
    with_memory = train_backbone_judge(data, backbone, cfg, tc, memory=memory)
    cfg = BackboneJudgeConfig(size=SIZE, backbone=NET.to_dict())
    without = train_backbone_judge(data, backbone, cfg, tc, memory=None)
    return data, memory, with_memory, without


def test_the_judge_with_memory_knows_which_colors_belong_to_which_thing(faithful):
    data, _, with_memory, without = faithful
    assert with_memory.heldout_pairs > 20
    assert with_memory.heldout_pages == without.heldout_pages
    assert with_memory.heldout_accuracy >= 0.9
    # Without memory only the global tint and the drawing's kinds of pixels are there.
    assert with_memory.heldout_accuracy >= without.heldout_accuracy + 0.15


def test_before_any_vote_the_score_is_the_fit_to_the_recalled_colors(faithful):
    data, memory, _, _ = faithful
    judge = BackboneJudge(UNet(NET).eval(), BackboneJudgeConfig(size=SIZE, backbone=NET.to_dict()),
                          memory)
    judge.eval()
    right = 0
    for page in range(0, len(data.inputs) // 4):
        x = data.inputs[4 * page : 4 * page + 4]
        with torch.no_grad():
            s = judge(x[:, :1], x[:, 1:])
        right += int(s.argmax()) == 0  # the near-true coloring
    assert right >= 0.9 * (len(data.inputs) // 4)


def test_a_judge_with_memory_saves_loads_and_differentiates(faithful, tmp_path):
    data, _, result, _ = faithful
    save_judge(result.judge, tmp_path / "judge")
    again = load_judge(tmp_path / "judge")
    assert isinstance(again, BackboneJudge) and again.memory is not None
    assert again.memory.light is not None  # the remembered lightness travels with it
    x = data.inputs[:8]
    with torch.no_grad():
        assert torch.allclose(result.judge(x[:, :1], x[:, 1:]), again(x[:, :1], x[:, 1:]),
                              atol=1e-4)
    lab = x[:2, 1:].clone().requires_grad_(True)
    again(x[:2, :1], lab).sum().backward()
    assert lab.grad is not None and lab.grad.abs().sum() > 0


def test_memories_of_different_encoders_are_not_pooled():
    from models.memory import ColorMemory

    a = _memory(range(2))
    other = ShapeEncoder(ShapeConfig(width=4, dim=16))
    b = ColorMemory(a.keys.float(), a.cells.long(), 15, other)
    first = ColorMemory(a.keys.float(), a.cells.long(), 15, a.encoder)
    with pytest.raises(ValueError):
        RecallMemory.from_memories([first, b])


def test_the_default_memory_is_the_named_files(tmp_path, monkeypatch):
    from training.judge import default_recall_memory

    JUDGE_MEMORY_ENV = "COLORBOT_JUDGE_MEMORY"

    pairs = [(np.asarray(_draw(t, 64).convert("L"), dtype=np.float32) / 2.55,
              np.asarray(_draw(t, 64, _colors(t)))) for t in range(3)]
    build_memory(pairs, 15, _encoder()).save(tmp_path / "a.memory.safetensors")
    monkeypatch.setenv(JUDGE_MEMORY_ENV, "none")
    assert default_recall_memory() is None
    monkeypatch.delenv(JUDGE_MEMORY_ENV, raising=False)  # unset: the family's shared memory
    from models.memory import ColorMemory
    from models.registry import BUNDLED_FAMILY_DIR

    shared = ColorMemory.load(BUNDLED_FAMILY_DIR / "shared.memory.safetensors")
    assert default_recall_memory().shape_dict()["pages"] == shared.cells.shape[0]
    one = tmp_path / "a.memory.safetensors"
    monkeypatch.setenv(JUDGE_MEMORY_ENV, f"{one},{one}")
    assert default_recall_memory().shape_dict()["pages"] == 6
    assert default_recall_memory("none") is None  # given names win over the setting
    monkeypatch.setenv(JUDGE_MEMORY_ENV, str(tmp_path / "missing.memory.safetensors"))
    assert default_recall_memory() is None

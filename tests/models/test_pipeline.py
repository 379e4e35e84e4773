"""The Colorizer: sizes, lines, regions, strength, photos, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.colorspace import rgb_to_lab
from models.images import page_lightness
from models.pipeline import ColorizeOptions, Colorizer, MemberPrediction, PreparedPage

from .conftest import draw_lineart, draw_photo


def _lab(image: Image.Image) -> torch.Tensor:
    arr = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return rgb_to_lab(arr)  # (3, H, W)


def _chroma(image: Image.Image) -> float:
    lab = _lab(image)
    return float(lab[1:].pow(2).sum(0).sqrt().mean())


@pytest.mark.parametrize("kind", ["lineart", "photo"])
def test_every_member_keeps_the_input_size(colorizer, family, kind):
    size = (257, 101)
    page = draw_lineart(size, width=2) if kind == "lineart" else draw_photo(size)
    result = colorizer.colorize([page], options=ColorizeOptions(kind=kind))[0]
    assert set(result) == set(family.names)
    for coloring in result.values():
        assert coloring.size == size and coloring.mode == "RGB"


@pytest.mark.parametrize("size", [(75, 333), (640, 480), (31, 29), (1001, 97)])
@pytest.mark.parametrize("options", [
    ColorizeOptions(kind="lineart"), ColorizeOptions(kind="lineart", fill=False),
    ColorizeOptions(kind="photo"),
])
def test_output_has_the_input_size(colorizer, size, options):
    page = draw_lineart(size, width=2)
    coloring = colorizer.colorize([page], members=["clipart"], options=options)[0]["clipart"]
    assert coloring.size == size


@pytest.mark.parametrize("options", [
    ColorizeOptions(),
    ColorizeOptions(fill=False),
    ColorizeOptions(strength=4.0),
    ColorizeOptions(strength=4.0, fill=False),
    ColorizeOptions(kind="photo", strength=3.0),
])
def test_line_pixels_stay_dark_in_every_coloring(colorizer, options):
    page = draw_lineart((300, 220), width=4)
    line = page_lightness(page) < 30
    assert line.mean() > 0.02
    for name, coloring in colorizer.colorize([page], options=options)[0].items():
        out_l = _lab(coloring)[0].numpy()
        assert out_l[line].max() < 35, name


def test_fill_gives_each_region_one_color(colorizer):
    page = draw_lineart((300, 200), width=3)
    prepared = colorizer.prepare(page)
    assert prepared.fill and prepared.regions is not None and prepared.regions.count >= 5
    labels = prepared.regions.labels
    # Region interiors: paper pixels at least 3 px from any line.
    from scipy import ndimage

    interior = ~ndimage.binary_dilation(labels == 0, iterations=3)
    for name in colorizer.family.names:
        rgb = np.asarray(colorizer.run_member(name, [prepared])[0]).reshape(-1, 3)
        for region in range(1, prepared.regions.count + 1):
            mask = ((labels == region) & interior).reshape(-1)
            if mask.sum() < 20:
                continue
            colors = np.unique(rgb[mask], axis=0)
            assert len(colors) == 1, (name, region, len(colors))


def test_fill_does_not_cross_lines(colorizer):
    """Each region's color is the median of the prediction inside it, not elsewhere."""
    page = draw_lineart((300, 200), width=3)
    prepared = colorizer.prepare(page)
    member = colorizer.family.members[0]
    pred = colorizer.predict(member, [prepared])[0]
    if isinstance(pred, MemberPrediction):
        pred = pred.lab  # a plain tensor takes the median path
    # Paint the prediction: +0.5 in a (network scale) left of x=150, -0.5 right of it.
    pred = pred.clone()
    half = pred.shape[-1] // 2
    pred[1, :, :half], pred[1, :, half:] = 0.5, -0.5
    out = _lab(Colorizer.composite(prepared, pred))
    labels = prepared.regions.labels
    left_box = labels[60, 40]  # upper half of the left box, entirely left of the middle
    circle = labels[70, 215]  # the circle, entirely right of the middle
    assert out[1][torch.from_numpy(labels == left_box)].min() > 20
    assert out[1][torch.from_numpy(labels == circle)].max() < -20


def test_no_fill_follows_the_prediction_per_pixel(colorizer):
    page = draw_lineart((300, 200), width=3)
    prepared = colorizer.prepare(page, ColorizeOptions(fill=False))
    assert not prepared.fill and prepared.regions is None
    pred = torch.zeros(3, *prepared.work_shape(96))
    pred[0] = 0.6
    pred[1] = torch.linspace(-0.4, 0.4, pred.shape[-1])  # a left-to-right a ramp
    out = _lab(Colorizer.composite(prepared, pred))
    assert out[1, 5, 20] < -20 and out[1, 5, 280] > 20


def test_strength_increases_chroma_and_stays_in_gamut(colorizer):
    page = draw_lineart((200, 150))
    strengths = (0.0, 0.5, 1.0, 3.0)
    prepared = {s: colorizer.prepare(page, ColorizeOptions(strength=s)) for s in strengths}
    for name in colorizer.family.names:
        out = {s: colorizer.run_member(name, [p])[0] for s, p in prepared.items()}
        assert _chroma(out[0.0]) < 1.0  # gray
        assert _chroma(out[1.0]) > _chroma(out[0.5]) + 1.0, name
        # Decoded region colors may already sit at the gamut's edge: more strength
        # then cannot add chroma, but it never takes any away.
        assert _chroma(out[3.0]) >= _chroma(out[1.0]) - 0.5, name
        # In gamut: converting back and forth changes nothing beyond rounding.
        lab = _lab(out[3.0])
        from models.colorspace import in_gamut

        assert bool(in_gamut(lab[None], tol=1e-2).all())


def test_photo_keeps_its_own_lightness(colorizer, photo):
    prepared = colorizer.prepare(photo)
    assert prepared.kind == "photo" and not prepared.fill
    page_l = page_lightness(photo)
    for coloring in colorizer.run_member(colorizer.family.names[0], [prepared]):
        # Same L up to 8-bit rounding and gamut fitting (chroma only, L kept).
        assert np.abs(_lab(coloring)[0].numpy() - page_l).mean() < 1.0


def test_run_member_is_one_network_call_for_many_pages(colorizer):
    pages = [colorizer.prepare(im) for im in
             (draw_lineart((200, 200)), draw_lineart((120, 300)), draw_photo((150, 100)))]
    name = colorizer.family.names[0]
    # The stem runs once per network call, whichever head path the call takes.
    net = getattr(colorizer.network(name), "stem", colorizer.network(name))
    shapes = []
    hook = net.register_forward_hook(lambda m, args, out: shapes.append(tuple(args[0].shape)))
    try:
        together = colorizer.run_member(name, pages)
    finally:
        hook.remove()
    assert len(shapes) == 1 and shapes[0][0] == 3
    assert [c.size for c in together] == [(200, 200), (120, 300), (150, 100)]
    # The square page sets the batch's size and needs no padding: the same coloring
    # alone (up to float summation order in batched convolutions).
    alone = colorizer.run_member(name, pages[:1])[0]
    diff = np.abs(np.asarray(alone).astype(int) - np.asarray(together[0]).astype(int))
    assert diff.max() <= 2


def test_prepared_page_is_reused_by_all_members(colorizer, lineart):
    prepared = colorizer.prepare(lineart)
    assert isinstance(prepared, PreparedPage)
    sizes = {m.work_size for m in colorizer.family.members}
    assert set(prepared._inputs) == sizes  # analysed once, up front
    out = colorizer.colorize([lineart])[0]
    for name in colorizer.family.names:
        again = colorizer.run_member(name, [prepared])[0]
        assert np.array_equal(np.asarray(again), np.asarray(out[name]))


def test_unknown_member_fails_before_work(colorizer, lineart):
    from models.family import FamilyError

    with pytest.raises(FamilyError, match="no family member named 'grandpa'"):
        colorizer.colorize([lineart], members=["grandpa"])


def test_bad_options_are_rejected():
    with pytest.raises(ValueError):
        ColorizeOptions(strength=-1)
    with pytest.raises(ValueError):
        ColorizeOptions(strength=10)


@pytest.mark.parametrize("strength", [1.0, 1.7])
def test_fill_colors_only_the_pixels_that_need_it_and_matches_the_full_pass(
    colorizer, strength
):
    """The fill's per-page pixel sets (`PreparedPage.fill_pixels`) give exactly what a
    pass over every pixel gives: lines, anti-aliased edges, regions too small to sample."""
    from PIL import ImageDraw

    from models.pipeline import _composite_filled, _fill_every_pixel, lab_to_rgb8
    from models.regions import region_medians

    page = draw_lineart((300, 200), width=2)
    ImageDraw.Draw(page).rectangle((150, 20, 159, 29), outline="black", width=1)  # tiny
    page = page.resize((257, 171), Image.Resampling.LANCZOS)
    prepared = colorizer.prepare(page, ColorizeOptions(kind="lineart", strength=strength))
    gen = torch.Generator().manual_seed(0)
    lab = torch.rand(3, 8, 12, generator=gen) * 2 - 1  # coarse: some regions unsampled
    lab[0] = lab[0] * 0.3 + 0.4
    lab_small = torch.cat(((lab[:1] + 1.0) * 50.0, lab[1:] * 110.0))
    lab_small[0].clamp_(min=prepared.min_fill_l)
    fast = _composite_filled(prepared, lab_small.clone())
    palette, has = region_medians(lab_small, prepared.samples((8, 12)))
    assert not bool(has[1:].all())  # the page has regions too small for the grid
    palette[:, 1:] *= strength
    full = _fill_every_pixel(prepared, lab_small, palette, lab_to_rgb8(palette.T.contiguous()),
                             has)
    assert torch.equal(fast, full)

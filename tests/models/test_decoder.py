"""The region color decoder and the lines-stay-visible rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from models.colorspace import rgb_to_lab
from models.decoder import (
    DecoderOptions,
    adjusted_scores,
    choose_cells,
    region_log_scores,
)
from models.pipeline import Colorizer, MemberPrediction
from models.regions import find_regions, region_adjacency, region_samples
from models.unet import ab_bin_centers

from .conftest import draw_lineart

BINS = 15
CENTERS = ab_bin_centers(BINS)  # (Q, 2)
Q = BINS * BINS


def cell_of(a: float, b: float) -> int:
    return int(torch.cdist(torch.tensor([[a, b]]), CENTERS).argmin())


def _lab(image: Image.Image) -> torch.Tensor:
    rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return rgb_to_lab(rgb)  # (3, H, W)


def two_boxes(size: int = 128) -> np.ndarray:
    """L of a page with two boxes side by side sharing a wall (plus the outside)."""
    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    d.rectangle((10, 30, size - 10, size - 30), outline=0, width=3)
    d.line([(size // 2, 30), (size // 2, size - 30)], fill=0, width=3)
    return np.asarray(im, dtype=np.float32) * (100.0 / 255.0)


def test_region_scores_are_mean_log_probabilities_up_to_a_constant_per_region():
    regions = find_regions(two_boxes())
    samples = region_samples(regions, (32, 32))
    logits = 3.0 * torch.randn(Q, 32, 32)
    logp = torch.log_softmax(logits, dim=0)
    assert torch.allclose(region_log_scores(logp, samples)[0], torch.zeros(Q))  # lines
    for rid in torch.nonzero(samples.counts).squeeze(1).tolist():
        idx = samples.index[samples.starts[rid] : samples.starts[rid] + samples.counts[rid]]
        expected = logp.reshape(Q, -1)[:, idx].mean(dim=1)
        assert torch.allclose(region_log_scores(logp, samples)[rid], expected, atol=1e-5)
        # From logits: the same up to one constant per region, so the same choices.
        diff = region_log_scores(logits, samples)[rid] - expected
        assert torch.allclose(diff, diff.mean().expand(Q), atol=1e-4)
        assert float(diff.abs().max()) > 0.1  # the constant is really there


def test_mode_of_the_product_picks_a_peak_not_the_blend():
    """Half the pixels say red, half say blue: the region is red or blue, never gray-brown."""
    red, blue = cell_of(0.6, 0.4), cell_of(0.2, -0.6)
    logits = torch.full((Q, 8, 8), -6.0)
    logits[red, :, :4] = 3.0
    logits[blue, :, 4:] = 2.9
    logits[red, :, 4:] = 2.0  # the blue half finds red plausible too
    logp = torch.log_softmax(logits, dim=0)
    scores = logp.reshape(Q, -1).mean(dim=1)[None].repeat(2, 1)
    cells = choose_cells(scores, torch.tensor([0, 64]), [set(), set()], CENTERS)
    assert int(cells[1]) == red


def test_neighbours_take_their_next_best_mode_when_the_distribution_allows():
    red, orange, blue = cell_of(0.6, 0.4), cell_of(0.5, 0.5), cell_of(0.2, -0.6)
    scores = torch.full((3, Q), -8.0)
    scores[1, red] = -0.5
    scores[2, orange] = -0.6  # nearly region 1's color ...
    scores[2, blue] = -0.8  # ... and blue is almost as likely
    neighbours = [set(), {2}, {1}]
    cells = choose_cells(scores, torch.tensor([0, 100, 50]), neighbours, CENTERS)
    assert int(cells[1]) == red and int(cells[2]) == blue
    # Not neighbours: each keeps its own best.
    cells = choose_cells(scores, torch.tensor([0, 100, 50]), [set(), set(), set()], CENTERS)
    assert int(cells[2]) == orange
    # Neighbours, but blue is far less likely: the region keeps its best.
    scores[2, blue] = -5.0
    cells = choose_cells(scores, torch.tensor([0, 100, 50]), neighbours, CENTERS)
    assert int(cells[2]) == orange


def test_prior_correction_lets_a_rare_color_win_but_keeps_confident_paper():
    gray, common, rare = cell_of(0.0, 0.0), cell_of(0.1, 0.3), cell_of(-0.5, 0.3)
    prior = torch.full((Q,), 1e-4)
    prior[gray], prior[common], prior[rare] = 0.6, 0.2, 0.001
    scores = torch.full((3, Q), -9.0)
    scores[1, common], scores[1, rare] = -1.0, -1.5  # unsure between the two
    scores[2, gray], scores[2, rare] = -0.05, -4.0  # confidently paper
    adjusted = adjusted_scores(scores, prior, 0.5)
    assert int(adjusted[1].argmax()) == rare
    assert int(adjusted[2].argmax()) == gray


def test_same_seed_same_coloring_and_seeds_give_variety():
    gen = torch.Generator().manual_seed(0)
    scores = torch.log_softmax(torch.randn(30, Q, generator=gen) * 0.5, dim=1)
    sizes = torch.arange(30)
    neighbours = [set() for _ in range(30)]

    def run(seed):
        return choose_cells(scores, sizes, neighbours, CENTERS, options=DecoderOptions(seed=seed))

    assert torch.equal(run(None), run(None))
    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_adjacency_finds_regions_that_share_a_line():
    regions = find_regions(two_boxes())
    neighbours = region_adjacency(regions.assigned, regions.count)
    left, right = regions.labels[64, 30], regions.labels[64, 98]
    outside = regions.labels[2, 2]
    assert right in neighbours[left] and left in neighbours[right]
    assert outside in neighbours[left]


def test_pipeline_colors_neighbouring_regions_differently(colorizer):
    """Through the real pipeline: a member whose distribution allows two colors
    everywhere gives the two boxes of one wall different colors."""
    page = Image.fromarray((two_boxes(160) * 2.55).astype(np.uint8)).convert("RGB")
    prepared = colorizer.prepare(page)
    h, w = prepared.work_shape(96)
    red, blue = cell_of(0.5, 0.3), cell_of(0.1, -0.5)
    logits = torch.full((Q, h, w), -6.0)
    logits[red], logits[blue] = 2.0, 1.9
    logp = torch.log_softmax(logits, dim=0)
    lab = torch.zeros(3, h, w)
    lab[0] = 0.4  # L 70
    out = _lab(Colorizer.composite(prepared, MemberPrediction(lab[:1], logp, CENTERS, None,
                                                              mean_ab=lab[1:])))
    labels = prepared.regions.labels
    left = torch.from_numpy(labels == labels[80, 40])
    right = torch.from_numpy(labels == labels[80, 120])
    a_left, a_right = out[1][left].median(), out[1][right].median()
    b_left, b_right = out[2][left].median(), out[2][right].median()
    assert float(torch.hypot(a_left - a_right, b_left - b_right)) > 20


def pencil_page(size: int = 200, gray: int = 140, width: int = 3) -> Image.Image:
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    d.ellipse((20, 20, size - 20, size - 20), outline=(gray,) * 3, width=width)
    d.rectangle((60, 60, size - 60, size - 60), outline=(gray,) * 3, width=width)
    return im


def black_paper(prepared, work: int = 96, chroma: float = 0.0) -> torch.Tensor:
    """A 'member' that predicts near-black everything (L 5), optionally colored."""
    h, w = prepared.work_shape(work)
    lab = torch.zeros(3, h, w)
    lab[0] = -0.9
    lab[1] = chroma
    return lab


@pytest.mark.parametrize("gray,width", [(140, 3), (0, 1), (140, 1), (0, 3)])
@pytest.mark.parametrize("fill", [True, False])
def test_lines_stay_visible_under_a_member_that_predicts_black_paper(
    colorizer, gray, width, fill
):
    from models.pipeline import ColorizeOptions

    page = pencil_page(gray=gray, width=width)
    prepared = colorizer.prepare(page, ColorizeOptions(kind="lineart", fill=fill))
    out = _lab(Colorizer.composite(prepared, black_paper(prepared)))
    page_l = _lab(page)[0]
    line = page_l < page_l.max() - 20  # the drawn pixels, anti-aliasing included
    core = page_l <= page_l[line].median() + 1  # the line's own gray
    paper = page_l > 99
    assert float(out[0][paper].median()) >= float(page_l[core].median()) + 15
    assert float(out[0][core].max()) <= float(page_l[core].max()) + 1  # lines kept as drawn


def test_the_bundled_family_keeps_pencil_lines_visible(colorizer):
    from training.quality import PageRegions, line_visibility

    page = pencil_page(gray=140, width=3)
    pr = PageRegions.of(np.asarray(_lab(page)[0]))
    prepared = colorizer.prepare(page)
    for name in colorizer.family.names:
        lab = _lab(colorizer.run_member(name, [prepared])[0]).permute(1, 2, 0).numpy()
        assert line_visibility(lab, pr) > 0.9, name


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (32, 32), (7, 300)])
def test_tiny_pages_are_colored_at_their_own_size(colorizer, size):
    page = draw_lineart((max(size[0], 1), max(size[1], 1)), width=1)
    for name in colorizer.family.names:
        out = colorizer.colorize([page], [name])[0][name]
        assert out.size == page.size


def test_a_32px_page_gets_more_than_one_region(colorizer):
    page = draw_lineart((32, 32), width=1)
    prepared = colorizer.prepare(page, __import__("models.pipeline").pipeline.ColorizeOptions(
        kind="lineart"))
    assert prepared.regions is not None and prepared.regions.count >= 3


def test_a_large_page_is_colored_at_its_size(colorizer):
    page = draw_lineart((2400, 1600), width=6)
    name = colorizer.family.names[0]
    out = colorizer.colorize([page], [name])[0][name]
    assert out.size == page.size
    lab = _lab(out)
    line = torch.from_numpy(np.asarray(page.convert("L")) < 60)
    assert float(lab[0][line].max()) < 40


def test_a_photo_batched_with_line_art_keeps_the_annealed_mean(colorizer):
    from .conftest import draw_photo

    photo = colorizer.prepare(draw_photo((96, 96)))
    page = colorizer.prepare(draw_lineart((96, 96)))
    name = colorizer.family.names[0]
    together = colorizer.run_member(name, [page, photo])[1]
    alone = colorizer.run_member(name, [photo])[0]
    diff = np.abs(np.asarray(alone).astype(int) - np.asarray(together).astype(int))
    assert diff.max() <= 2


def test_gray_penalty_moves_the_drawing_off_gray_and_leaves_the_paper():
    from models.decoder import penalize_gray

    gray = int(CENTERS.norm(dim=1).argmin())
    red = int((CENTERS - torch.tensor([0.5, 0.3])).norm(dim=1).argmin())
    scores = torch.full((3, CENTERS.shape[0]), -8.0)
    scores[1:, gray] = -1.0
    scores[1:, red] = -1.6
    inside = torch.tensor([False, True, False])  # region 2 is the paper around it
    adjusted = penalize_gray(scores, CENTERS, inside, 1.0)
    cells = choose_cells(adjusted, torch.tensor([0, 50, 100]), [set(), set(), set()], CENTERS)
    assert int(cells[1]) == red and int(cells[2]) == gray
    assert torch.equal(penalize_gray(scores, CENTERS, inside, 0.0), scores)

"""The shape embedding's page frame and encoder, and the names that pair emoji sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.shape import VIEW, ShapeEncoder, ink_frame, ink_view


def page_with_box(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    page = np.full((h, w), 100.0, np.float32)
    y0, x0, y1, x1 = box
    page[y0:y1, x0] = page[y0:y1, x1 - 1] = 0.0
    page[y0, x0:x1] = page[y1 - 1, x0:x1] = 0.0
    return page


def test_the_frame_is_a_square_around_the_ink():
    frame = ink_frame(page_with_box(300, 500, (100, 200, 160, 320)))
    assert frame.side == pytest.approx(120 * 1.08)
    assert frame.top + frame.side / 2 == pytest.approx(130)
    assert frame.left + frame.side / 2 == pytest.approx(260)


def test_a_blank_page_frames_the_whole_sheet():
    frame = ink_frame(np.full((40, 80), 100.0, np.float32))
    assert frame.side == 80 and frame.top == -20 and frame.left == 0


def test_the_view_does_not_depend_on_where_or_how_big_the_drawing_is():
    small = ink_view(page_with_box(400, 400, (10, 250, 110, 350)))
    big = ink_view(page_with_box(200, 200, (0, 0, 200, 200)))
    assert small.shape == (VIEW, VIEW)
    # Both are a square outline filling the view: the same picture, up to line weight.
    assert np.corrcoef(small.ravel(), big.ravel())[0, 1] > 0.6
    assert small[VIEW // 2, VIEW // 2] == 0.0 and small.max() > 0.2


def test_encoder_gives_unit_vectors_for_any_batch():
    encoder = ShapeEncoder().eval()
    views = np.random.default_rng(0).random((3, VIEW, VIEW)).astype(np.float32)
    out = encoder.embed(views)
    assert out.shape == (3, 128)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(encoder.embed(views[1]), out[1], atol=1e-5)
    assert encoder.training is False


def test_concepts_pair_the_same_emoji_across_sets():
    from training.shape import concept_of

    names = {"1F438": "frog", "1F44B-1F3FB": "waving hand: light skin tone"}
    assert concept_of("openmoji/1F438", names) == concept_of("noto/frog") == "frog"
    assert (concept_of("openmoji/1F44B-1F3FB", names)
            == concept_of("fluent/Flat/waving_hand_flat_light")
            == concept_of("emojione/waving-hand-light-skin-tone"))
    assert concept_of("fluent/Flat/frog_flat") == "frog"
    assert concept_of("openmoji/1F438") == "frogface"  # Unicode's name without the table
    assert concept_of("openmoji/E010") is None  # OpenMoji's own extras
    assert concept_of("openclipart/animals/frog.svg") is None


def test_skin_tone_variants_are_found_and_things_named_light_are_not():
    from training.shape import concept_of, skin_tone_variants

    sources = ["fluent/flat/raising-hands-default", "fluent/flat/raising-hands-dark",
               "fluent/flat/raising-hands-medium-light", "fluent/flat/police-car",
               "fluent/flat/police-car-light", "fluent/Flat/waving_hand_flat_default",
               "fluent/Flat/waving_hand_flat_medium_dark", "openmoji/1F44B-1F3FB",
               "openmoji/1F44B", "noto/vertical-traffic-light"]
    assert skin_tone_variants(sources) == {
        "fluent/flat/raising-hands-dark", "fluent/flat/raising-hands-medium-light",
        "fluent/Flat/waving_hand_flat_medium_dark", "openmoji/1F44B-1F3FB"}
    assert concept_of("fluent/flat/raising-hands-default") == "raisinghands"


def test_contrastive_training_pulls_the_same_thing_together(tmp_path):
    """A few steps on two concepts drawn by two 'sets' each: after training, each
    drawing's nearest other drawing is its twin from the other set."""
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: a second thread only spins on 2 busy cores
    try:
        _train_two_sets()
    finally:
        torch.set_num_threads(before)


def _train_two_sets() -> None:
    from training.shape import ShapeData, group_views, info_nce, sample_batch

    rng = np.random.default_rng(0)
    views, concepts = [], []
    for c in range(6):
        base = (rng.random((8, 8)) > 0.6).astype(np.float32)
        for shift in (0, 1):
            img = np.kron(base, np.ones((8, 8), np.float32))
            views.append(np.roll(img, shift * 3, axis=1))
            concepts.append(f"c{c}")
    data = ShapeData(torch.from_numpy((np.stack(views) * 255).astype(np.uint8)),
                     group_views(concepts), ["a", "b"] * 6)
    encoder = ShapeEncoder()
    opt = torch.optim.Adam(encoder.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        a, b = sample_batch(data, 6, gen)
        z = encoder(torch.cat([a, b]))
        loss = info_nce(z[:6], z[6:], 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    keys = encoder.embed(np.stack(views))
    sims = keys @ keys.T
    np.fill_diagonal(sims, -1)
    twins = sims.argmax(axis=1)
    assert np.mean([concepts[t] == concepts[i] for i, t in enumerate(twins)]) >= 0.8

"""The judge learns a hidden taste from vote pairs (tiny pages, tiny network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.training.votes_helpers import STYLES, fake_coloring, fake_votes, one_thread  # noqa: F401
from training.judge import (
    Judge,
    JudgeConfig,
    JudgeTrainConfig,
    PairData,
    judge_inputs,
    load_judge,
    save_judge,
    score_colorings,
    train_judge,
)
from training.simulate import HiddenTaste, synthetic_page

SIZE = 32
pytestmark = pytest.mark.usefixtures("one_thread")


def _pair_data(taste: HiddenTaste, n_pages: int, seed: int) -> PairData:
    pages, colorings, pairs = fake_votes(n_pages, 5, taste, seed=seed)
    index, inputs = {}, []
    for p, page in enumerate(pages):
        for m in STYLES:
            index[(p, m)] = len(inputs)
            inputs.append(judge_inputs(page, colorings[p][m], SIZE))
    return PairData(
        torch.stack(inputs),
        np.array([index[(p, w)] for p, w, _ in pairs]),
        np.array([index[(p, lo)] for p, _, lo in pairs]),
        np.array([p for p, _, _ in pairs]),
    )


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    taste = HiddenTaste(temperature=0.3)
    data = _pair_data(taste, 40, seed=0)
    cfg = JudgeConfig(size=SIZE, base_channels=8)
    result = train_judge(data, cfg, JudgeTrainConfig(steps=150, batch_pairs=64))
    return taste, data, result


def test_heldout_pairwise_accuracy_beats_chance_by_far(trained):
    _, data, result = trained
    assert result.heldout_pairs > 50 and result.train_pairs > 200
    assert set(result.heldout_pages).isdisjoint(
        set(np.unique(data.pages)) - set(result.heldout_pages)
    )
    assert result.heldout_accuracy >= 0.8
    assert result.losses[-1] < result.losses[0]


def test_judge_orders_fresh_pages_like_the_taste(trained):
    taste, _, result = trained
    agree = 0
    for k in range(10):
        page = synthetic_page(9000 + k, 48)
        cols = [fake_coloring(page, *STYLES[m], seed=k) for m in ("sunny", "icy")]
        scores = score_colorings(result.judge, page, cols)
        agree += (scores[0] > scores[1]) == (taste.score(cols[0]) > taste.score(cols[1]))
    assert agree >= 9


def test_untrained_judge_is_near_chance(trained):
    _, data, result = trained
    torch.manual_seed(1)
    fresh = train_judge(data, result.judge.cfg, JudgeTrainConfig(steps=0))
    assert fresh.heldout_accuracy < result.heldout_accuracy


def test_save_and_load_give_the_same_scores(trained, tmp_path):
    _, data, result = trained
    save_judge(result.judge, tmp_path / "judge", result.metrics())
    again = load_judge(tmp_path / "judge")
    x = data.inputs[:8]
    with torch.no_grad():
        assert torch.allclose(result.judge(x[:, :1], x[:, 1:]), again(x[:, :1], x[:, 1:]))


def test_score_is_differentiable_in_the_coloring_at_any_size():
    judge = Judge(JudgeConfig(size=SIZE, base_channels=4))
    lab = torch.zeros(2, 3, 40, 56, requires_grad=True)
    judge(torch.ones(2, 1, 40, 56), lab).sum().backward()
    assert lab.grad is not None and lab.grad.abs().sum() > 0


def _voted_rows():
    """First-choice votes on 10 pages where 'steady' is always second and never picked,
    and 'swingy' is picked on 3 pages and last on the other 7."""
    from datetime import UTC, datetime

    from db.results import ColoringRef, VotedPage

    pages = [{"top": 3, "steady": 2, "weak": 1, "swingy": 0}] * 7
    pages += [{"swingy": 3, "top": 2, "steady": 1.5, "weak": 1}] * 3
    rows, utility, cid = [], {}, 0
    for p, utilities in enumerate(pages):
        refs = []
        for member, u in utilities.items():
            cid += 1
            utility[f"c{cid}"] = u
            refs.append(ColoringRef(cid, member, 1, 0, "", f"c{cid}", {}))
        best = max(refs, key=lambda r: utility[r.sha256])
        for voter in range(5):
            rows.append(
                VotedPage(
                    vote_id=p * 10 + voter, user_id=voter, guild_id=1, page_id=p,
                    page_sha256=f"page{p}", page_kind="lineart", voted=best,
                    others=tuple(r for r in refs if r is not best),
                    voted_at=datetime(2026, 12, 1, tzinfo=UTC), source="simulated",
                )
            )
    return rows, utility


def test_judged_pairs_compare_the_colorings_votes_never_compare():
    from PIL import Image

    from training.judge import judged_preferences
    from training.leaderboard import head_to_head_leaderboard, leaderboard
    from training.votes import preferences_from_voted_pages

    rows, utility = _voted_rows()

    def image_of(sha):
        img = Image.new("RGB", (2, 2))
        img.info["u"] = utility.get(sha, 0.0)
        return img

    by_votes = [r.member for r in leaderboard(preferences_from_voted_pages(rows), rounds=0)]
    assert by_votes[:2] == ["top", "swingy"]  # a favourite on 3 pages beats a steady second
    judged = judged_preferences(rows, image_of, lambda _page, cols: [c.info["u"] for c in cols])
    assert judged.pages == 10 and len(judged.pairs) == 10 * 6  # every two of four, per page
    assert {p.group for p in judged.pairs} == set(range(10))  # bootstrap resamples pages
    by_judge = [r.member for r in head_to_head_leaderboard(judged, rounds=20)]
    # steady beats swingy head to head on 7 of 10 pages (mean utility 1.85 vs 0.9)
    assert by_judge[:2] == ["top", "steady"]

"""Preference tuning on the a/b head's log-likelihood, and the judge on a backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.unet import UNet, UNetConfig, ab_bin_centers
from tests.training.votes_helpers import one_thread  # noqa: F401
from training.judge import (
    BackboneJudge,
    BackboneJudgeConfig,
    JudgeTrainConfig,
    PairData,
    cell_log_likelihood,
    judge_inputs,
    load_judge,
    save_judge,
    score_colorings,
    train_backbone_judge,
)
from training.retrain import (
    PreferenceTuneConfig,
    _prefix,
    _tail_logp,
    pair_log_likelihoods,
    preference_examples,
    preference_tune_member,
)
from training.simulate import synthetic_page
from training.votes import Preference

pytestmark = pytest.mark.usefixtures("one_thread")
CFG = UNetConfig(out_channels=3, base_channels=4, depth=2, max_channels=8, ab_bins=5)


def _net(seed=0):
    torch.manual_seed(seed)
    return UNet(CFG).eval()


def _paint(page, rgb):
    arr = np.asarray(page.convert("RGB")).copy()
    arr[arr.mean(axis=2) > 128] = rgb
    return Image.fromarray(arr)


def test_cell_log_likelihood_is_exact_at_cell_centers_and_between_them():
    logp = torch.log_softmax(torch.randn(1, 25, 1, 1), dim=1)
    centers = ab_bin_centers(5)
    for q in (0, 7, 12, 24):
        ab = centers[q].view(1, 2, 1, 1)
        assert torch.allclose(cell_log_likelihood(logp, ab)[0, 0, 0, 0], logp[0, q, 0, 0])
    halfway = ((centers[12] + centers[13]) / 2).view(1, 2, 1, 1)
    expected = (logp[0, 12] + logp[0, 13]) / 2
    assert torch.allclose(cell_log_likelihood(logp, halfway)[0, 0], expected)


def test_split_network_gives_the_full_networks_distribution():
    net = _net()
    x = torch.rand(2, 1, 24, 24) * 2 - 1
    with torch.no_grad():
        full = torch.log_softmax(net.heads(net.features(x))[1], dim=1)
        for tail in (0, 1, 2):
            h, skips = _prefix(net, x, tail)
            assert torch.allclose(_tail_logp(net, h, skips, tail, 24, 24), full, atol=1e-5)


def _green_over_magenta(n_pages=6, size=24):
    pages, cols, pairs = {}, {}, []
    for p in range(n_pages):
        page = synthetic_page(p, size)
        pages[p] = page
        cols[2 * p] = _paint(page, (40, 170, 60))  # the winner: green
        cols[2 * p + 1] = _paint(page, (200, 40, 180))  # the loser: magenta
        pairs.append(Preference(p, "a", "b", 2 * p, 2 * p + 1, group=p))
    return pages, cols, pairs


def test_preference_tuning_raises_winners_likelihood_against_the_parent():
    pages, cols, pairs = _green_over_magenta()
    ex = preference_examples(pairs, pages, cols, 24)
    parent = _net(1)
    before = [p.detach().clone() for p in parent.parameters()]
    tuned = preference_tune_member(parent, ex, PreferenceTuneConfig(size=24, steps=30,
                                                                    batch_pairs=4, lr=5e-3))
    assert tuned.steps == 30 and tuned.losses[-1]["dpo"] < tuned.losses[0]["dpo"]
    ref, new = pair_log_likelihoods(parent, ex), pair_log_likelihoods(tuned.net, ex)
    margin_ref = ref[ex.winners] - ref[ex.losers]
    margin_new = new[ex.winners] - new[ex.losers]
    assert bool((margin_new > margin_ref + 0.1).all())
    assert all(torch.equal(a, b) for a, b in zip(before, parent.parameters(), strict=True))
    # Lightness and the encoder are frozen: only the last decoder block and the a/b head.
    assert torch.equal(tuned.net.l_head.weight, parent.l_head.weight)
    assert torch.equal(tuned.net.stem.body[0].weight, parent.stem.body[0].weight)
    assert not torch.equal(tuned.net.ab_head.weight, parent.ab_head.weight)


def test_backbone_judge_starts_from_the_backbones_likelihood_and_learns_a_taste(tmp_path):
    backbone = _net(2)
    pages, cols, pairs = _green_over_magenta(n_pages=16)
    inputs, index = [], {}
    for cid, col in cols.items():
        index[cid] = len(inputs)
        inputs.append(judge_inputs(pages[cid // 2], col, 24, letterbox_pages=True))
    data = PairData(torch.stack(inputs), np.array([index[p.winner_coloring_id] for p in pairs]),
                    np.array([index[p.loser_coloring_id] for p in pairs]),
                    np.array([p.page_id for p in pairs]))
    cfg = BackboneJudgeConfig(size=24, backbone=CFG.to_dict())
    untrained = BackboneJudge(backbone, cfg)
    # Before any vote: the score is the backbone's own likelihood of the colors.
    page_l = data.inputs[:1, :1]
    with torch.no_grad():
        _, logp = untrained.page_view(page_l)
        best = ab_bin_centers(5)[logp.mean(dim=(2, 3)).argmax(dim=1)].view(1, 2, 1, 1)
        worst = ab_bin_centers(5)[logp.mean(dim=(2, 3)).argmin(dim=1)].view(1, 2, 1, 1)
        lab = data.inputs[:1, 1:].clone()
        lab_best, lab_worst = lab.clone(), lab.clone()
        lab_best[:, 1:] = best.expand(-1, -1, 24, 24)
        lab_worst[:, 1:] = worst.expand(-1, -1, 24, 24)
        untrained.desc_std.fill_(1.0)
        assert untrained(page_l, lab_best) > untrained(page_l, lab_worst)
    result = train_backbone_judge(data, backbone, cfg,
                                  JudgeTrainConfig(steps=150, lr=1e-2, heldout_share=0.25))
    assert result.heldout_pairs == 4 and result.heldout_accuracy == 1.0
    assert len(result.scores) == len(inputs)
    save_judge(result.judge, tmp_path / "judge")
    loaded = load_judge(tmp_path / "judge")
    assert isinstance(loaded, BackboneJudge)
    page = pages[0]
    s = score_colorings(loaded, page, [cols[0], cols[1]])
    assert s[0] > s[1] and np.allclose(s, score_colorings(result.judge, page, [cols[0], cols[1]]),
                                       atol=1e-4)

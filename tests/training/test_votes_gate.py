"""The vote gate: the judge alone may not promote; the registry refuses what it kept."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.votes_gate import VoteGateConfig, gated_validator, vote_agreement, vote_gate


def _flat(rgb, size=24):
    return Image.new("RGB", (size, size), rgb)


def test_vote_agreement_counts_pairs_whose_winner_is_nearer():
    red, green, blue = _flat((200, 30, 30)), _flat((30, 160, 40)), _flat((30, 40, 200))
    pairs = [[(red, green), (red, blue)], [(green, blue)]]
    assert vote_agreement([red, green], pairs) == 1.0
    assert vote_agreement([blue, blue], [[(red, blue)], [(green, blue)]]) == 0.0
    assert vote_agreement([_flat((190, 40, 40)), blue], pairs) == 2 / 3


def test_judge_alone_may_not_promote():
    cfg = VoteGateConfig(min_pages=4)
    judge_likes = ([1.0] * 10, [0.0] * 10)
    kept = vote_gate(*judge_likes, 0.60, 0.60, None, None, cfg, pairs=40)
    assert not kept.promote and "the judge alone may not promote" in kept.reason
    passed = vote_gate(*judge_likes, 0.66, 0.60, None, None, cfg, pairs=40)
    assert passed.promote and "votes agree 60.0% -> 66.0%" in passed.reason
    assert passed.judge_win_rate == 1.0 and passed.agreement["pairs"] == 40
    votes_only = vote_gate([0.0] * 10, [1.0] * 10, 0.9, 0.6, None, None, cfg)
    assert not votes_only.promote and "judge prefers it on 0%" in votes_only.reason
    assert not vote_gate([1.0] * 3, [0.0] * 3, 0.9, 0.6, None, None, cfg).promote  # too few


def test_truth_where_it_exists_must_not_get_worse():
    cfg = VoteGateConfig(min_pages=4)
    args = ([1.0] * 10, [0.0] * 10, 0.7, 0.6)
    worse = vote_gate(*args, {"ciede2000": 20.0}, {"ciede2000": 20.3}, cfg)
    assert not worse.promote and "CIEDE2000 20.00 -> 20.30" in worse.reason
    better = vote_gate(*args, {"ciede2000": 20.0, "lines_kept_dark": 0.95},
                       {"ciede2000": 19.5, "lines_kept_dark": 0.95}, cfg)
    assert better.promote and "CIEDE2000 20.00 -> 19.50" in better.reason
    lines = vote_gate(*args, {"lines_kept_dark": 0.95}, {"lines_kept_dark": 0.80}, cfg)
    assert not lines.promote and "lines kept dark" in lines.reason


def test_gated_validator_puts_the_decision_before_the_registry_check(tmp_path):
    cfg = VoteGateConfig(min_pages=1)
    calls = []

    def registry_check(root, parent, candidate):
        calls.append(candidate)
        return None

    kept = vote_gate([1.0], [0.0], 0.5, 0.6, None, None, cfg)
    refusal = gated_validator(kept, registry_check)(tmp_path, None, "cand")
    assert refusal.startswith("the vote gate kept it:") and not calls
    passed = vote_gate([1.0], [0.0], 0.9, 0.6, None, None, cfg)
    assert gated_validator(passed, registry_check)(tmp_path, None, "cand") is None
    assert calls == ["cand"]
    assert np.isclose(passed.judge_win_rate, 1.0)

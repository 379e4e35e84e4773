"""Votes -> pairwise preferences (pure functions)."""

from __future__ import annotations

from training.votes import ColoringRecord, VoteRecord, preferences_from_votes, win_counts


def _page(page_id: int, guild: int, first_id: int, members=("a", "b", "c")):
    return [
        ColoringRecord(first_id + k, page_id, m, version=1, guild_id=guild)
        for k, m in enumerate(members)
    ]


def test_a_vote_beats_each_other_coloring_of_its_page():
    colorings = _page(1, 10, 100) + _page(2, 10, 200)
    votes = [VoteRecord(user_id=7, page_id=1, coloring_id=101, guild_id=10, vote_id=5)]
    prefs = preferences_from_votes(votes, colorings)
    assert sorted((p.winner, p.loser) for p in prefs.pairs) == [("b", "a"), ("b", "c")]
    assert {p.group for p in prefs.pairs} == {5}
    assert prefs.votes == 1 and prefs.pages == 1 and prefs.members == ["a", "b", "c"]


def test_guild_filter_and_overall():
    colorings = _page(1, 10, 100) + _page(2, 20, 200)
    votes = [
        VoteRecord(1, 1, 100, guild_id=10),
        VoteRecord(2, 2, 202, guild_id=20),
        VoteRecord(3, 2, 202, guild_id=20),
    ]
    overall = preferences_from_votes(votes, colorings)
    g20 = preferences_from_votes(votes, colorings, guild_id=20)
    assert len(overall.pairs) == 6 and overall.votes == 3
    assert win_counts(g20.pairs) == {("c", "a"): 2, ("c", "b"): 2}


def test_unknown_coloring_or_lonely_coloring_is_skipped():
    colorings = _page(1, 10, 100, members=("a",)) + _page(2, 10, 200)
    votes = [VoteRecord(1, 1, 100), VoteRecord(1, 2, 999), VoteRecord(1, 2, 300)]
    prefs = preferences_from_votes(votes, colorings)
    assert prefs.pairs == [] and prefs.skipped_votes == 3


def test_same_member_twice_on_a_page_never_plays_itself():
    colorings = _page(1, 10, 100) + [ColoringRecord(150, 1, "b", version=1)]
    prefs = preferences_from_votes([VoteRecord(1, 1, 101)], colorings)
    assert sorted(p.loser for p in prefs.pairs) == ["a", "c"]


def test_by_version_ranks_versions_and_member_filter():
    colorings = [
        ColoringRecord(1, 1, "a", version=1),
        ColoringRecord(2, 1, "a", version=2),
        ColoringRecord(3, 1, "b", version=1),
    ]
    prefs = preferences_from_votes([VoteRecord(1, 1, 2)], colorings, by_version=True)
    assert sorted(p.loser for p in prefs.pairs) == ["a@1", "b@1"]
    only_a = preferences_from_votes(
        [VoteRecord(1, 1, 2)], colorings, members=["a"], by_version=True
    )
    assert [(p.winner, p.loser) for p in only_a.pairs] == [("a@2", "a@1")]

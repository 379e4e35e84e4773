"""The console leaderboard says why two members share a rank."""

from __future__ import annotations

from training.leaderboard import LeaderboardRow, format_table


def _row(rank: int, position: int, member: str, rating: float, lower: float, upper: float):
    return LeaderboardRow(rank=rank, position=position, member=member, rating=rating,
                          lower=lower, upper=upper, wins=10, games=20, emoji="")


def test_two_rows_sharing_rank_1_are_explained_by_their_overlapping_intervals():
    rows = [
        _row(1, 1, "artworks", 1080, 1040, 1110),
        _row(1, 2, "fluent", 1060, 1020, 1090),
        _row(3, 3, "clipart", 860, 820, 900),
    ]
    text = format_table(rows)
    notes = text.split("\n\n", 1)[1]
    assert "rank 1 is shared by artworks and fluent" in notes
    assert "95% intervals overlap" in notes
    assert "1040..1110, 1020..1090" in notes
    assert "clipart" not in notes.splitlines()[0]
    assert "rank = 1 + the members whose whole 95% interval lies above" in notes


def test_no_note_when_every_rank_is_held_once():
    rows = [_row(1, 1, "artworks", 1100, 1080, 1120), _row(2, 2, "fluent", 900, 880, 920)]
    assert "shared" not in format_table(rows)
    assert "\n\n" not in format_table(rows)

"""Duels in the database: two colorings of a page, one vote per person per duel."""

from __future__ import annotations

import asyncio

import pytest

from db import Database, NotFound
from db.duels import (
    cast_duel_vote,
    create_duel,
    duel_pairs,
    forget_duel_votes,
    get_duel,
    page_sides,
    set_duel_message,
)
from tests.db.helpers import posted_page


async def _duel(db: Database, message_id: int = 10, guild_id: int = 1001):
    page_id, colorings = await posted_page(db, message_id=message_id, reply_id=message_id + 1,
                                           guild_id=guild_id)
    duel = await create_duel(db, page_id, colorings["🌈"], colorings["📎"], guild_id=guild_id,
                             channel_id=2002)
    return page_id, colorings, duel


async def test_a_duel_names_its_two_colorings_and_members(db: Database) -> None:
    page_id, colorings, duel = await _duel(db)
    assert duel.page_id == page_id and duel.message_id is None
    assert (duel.a.member, duel.a.emoji, duel.a.coloring_id) == ("fluent", "🌈", colorings["🌈"])
    assert (duel.b.member, duel.b.version) == ("clipart", 1)
    await set_duel_message(db, duel.id, 777, channel_id=2003)
    again = await get_duel(db, duel.id)
    assert (again.message_id, again.channel_id) == (777, 2003)
    assert again.a == duel.a and again.b == duel.b


async def test_a_duel_needs_two_colorings_of_its_page(db: Database) -> None:
    page_id, colorings = await posted_page(db, message_id=1, reply_id=2)
    other_page, others = await posted_page(db, message_id=3, reply_id=4)
    with pytest.raises(ValueError):
        await create_duel(db, page_id, colorings["😀"], colorings["😀"])
    with pytest.raises(NotFound):
        await create_duel(db, page_id, colorings["😀"], others["🌈"])
    with pytest.raises(NotFound):
        await get_duel(db, 12345)


async def test_one_vote_per_person_per_duel_and_a_new_vote_replaces_it(db: Database) -> None:
    _, _, duel = await _duel(db)
    first = await cast_duel_vote(db, duel.id, 5, "a")
    assert (first.status, first.choice, first.previous) == ("added", "a", None)
    assert (first.duel.a.member, first.duel.b.member) == ("fluent", "clipart")
    assert await cast_duel_vote(db, duel.id, 6, "tie")
    same = await cast_duel_vote(db, duel.id, 5, "a")
    assert same.status == "unchanged"
    moved = await cast_duel_vote(db, duel.id, 5, "b")
    assert (moved.status, moved.previous) == ("changed", "a")
    assert (moved.tally.a, moved.tally.b, moved.tally.tie, moved.tally.votes) == (0, 1, 1, 2)

    pairs = await duel_pairs(db)
    assert [(p.user_id, p.choice, p.winner, p.loser) for p in pairs] == [
        (5, "b", "clipart", "fluent"), (6, "tie", None, None)]
    with pytest.raises(ValueError):
        await cast_duel_vote(db, duel.id, 5, "c")
    with pytest.raises(NotFound):
        await cast_duel_vote(db, duel.id + 100, 5, "a")


async def test_concurrent_votes_of_one_person_leave_one_vote(db: Database) -> None:
    _, _, duel = await _duel(db)
    choices = ["a", "b", "tie", "a", "b", "tie", "a", "b"]
    results = await asyncio.gather(*(cast_duel_vote(db, duel.id, 9, c) for c in choices))
    pairs = await duel_pairs(db)
    assert len(pairs) == 1 and pairs[0].user_id == 9
    assert sum(r.status == "added" for r in results) == 1
    # The vote that stands is the last one applied.
    assert results[-1].tally.votes == 1


async def test_pairs_by_guild(db: Database) -> None:
    _, _, here = await _duel(db, message_id=10, guild_id=1)
    _, _, there = await _duel(db, message_id=20, guild_id=2)
    await cast_duel_vote(db, here.id, 5, "a")
    await cast_duel_vote(db, there.id, 5, "b")
    assert [p.duel_id for p in await duel_pairs(db, 1)] == [here.id]
    assert [p.duel_id for p in await duel_pairs(db, 2)] == [there.id]
    assert len(await duel_pairs(db)) == 2


async def test_forgetting_the_page_author_deletes_the_duel_and_its_votes(db: Database) -> None:
    _, _, duel = await _duel(db)
    await cast_duel_vote(db, duel.id, 5, "a")
    await db.forget_user(3003)  # the page's author (tests.db.helpers.posted_page)
    assert await duel_pairs(db) == []
    with pytest.raises(NotFound):
        await get_duel(db, duel.id)


async def test_forgetting_a_voter_deletes_their_duel_votes_only(db: Database) -> None:
    _, _, duel = await _duel(db)
    await cast_duel_vote(db, duel.id, 5, "a")
    await cast_duel_vote(db, duel.id, 6, "b")
    assert await forget_duel_votes(db, 5) == 1
    assert [p.user_id for p in await duel_pairs(db)] == [6]


async def test_forget_deletes_the_callers_votes_on_other_peoples_duels(db: Database) -> None:
    _, _, duel = await _duel(db)
    await cast_duel_vote(db, duel.id, 5, "a")
    await cast_duel_vote(db, duel.id, 6, "b")
    result = await db.forget_user(5)  # a voter, not the page's author
    assert result.votes == 1 and result.pages == 0
    assert [p.user_id for p in await duel_pairs(db)] == [6]
    assert (await get_duel(db, duel.id)).id == duel.id  # the duel itself stays


async def test_page_sides_are_the_page_colorings_with_their_members(db: Database) -> None:
    page_id, colorings = await posted_page(db, message_id=1, reply_id=2)
    await posted_page(db, message_id=3, reply_id=4)
    sides = await page_sides(db, page_id)
    assert {s.member: s.coloring_id for s in sides} == {
        "openmoji": colorings["😀"], "fluent": colorings["🌈"], "clipart": colorings["📎"],
        "artworks": colorings["🎨"]}
    assert await page_sides(db, 999) == []

"""The repository API the bot and the trainer use, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from db import Conflict, Database, NewColoring, NotFound
from db.models import Vote
from tests.db.helpers import FAMILY, colorings_of, png, posted_page, vote_history

GUILD = 1001


# ----------------------------------------------------------- guilds, channels


async def test_ensure_guild_creates_once_and_keeps_the_name_fresh(db: Database) -> None:
    first = await db.ensure_guild(GUILD, "Family")
    again = await db.ensure_guild(GUILD, "Family room")
    assert first.id == again.id == GUILD
    assert again.name == "Family room"
    assert again.created_at.tzinfo is not None


async def test_guild_settings_are_merged_key_by_key(db: Database) -> None:
    await db.update_guild_settings(GUILD, {"gallery": True, "lang": "en"})
    guild = await db.update_guild_settings(GUILD, {"lang": "nl"})
    assert guild.settings == {"gallery": True, "lang": "nl"}


async def test_explicit_channel_choice_wins_over_default_names(db: Database) -> None:
    defaults = ("coloring",)
    assert await db.is_channel_enabled(GUILD, 11, "coloring", defaults)
    assert not await db.is_channel_enabled(GUILD, 12, "general", defaults)

    await db.set_channel_enabled(GUILD, 12, True, changed_by=7)
    await db.set_channel_enabled(GUILD, 11, False)
    assert await db.is_channel_enabled(GUILD, 12, "general", defaults)
    assert not await db.is_channel_enabled(GUILD, 11, "coloring", defaults)

    await db.set_channel_enabled(GUILD, 11, True)
    assert await db.is_channel_enabled(GUILD, 11, "coloring", defaults)


# ---------------------------------------------------------- pages, colorings


async def test_same_image_in_same_message_is_one_page_stored_once(db: Database) -> None:
    image = png("cat")
    first = await db.record_page(image, guild_id=GUILD, channel_id=5, message_id=50, author_id=9)
    again = await db.record_page(image, guild_id=GUILD, channel_id=5, message_id=50, author_id=9)
    other = await db.record_page(image, guild_id=GUILD, channel_id=5, message_id=51, author_id=9)
    assert first.created and not again.created and other.created
    assert again.page.id == first.page.id != other.page.id
    assert first.page.sha256 == other.page.sha256
    assert db.store is not None and db.store.get(first.page.sha256) == image
    assert first.page.size_bytes == len(image)


async def test_read_image_gives_the_stored_bytes(db: Database, backend) -> None:
    recorded = await db.record_page(png("dog"), guild_id=GUILD, message_id=52)
    assert await db.read_image(recorded.page.sha256) == png("dog")
    with pytest.raises(FileNotFoundError):
        await db.read_image("0" * 64)
    without_store = backend.database()
    try:
        with pytest.raises(FileNotFoundError):
            await without_store.read_image(recorded.page.sha256)
    finally:
        await without_store.close()


async def test_discord_ids_keep_all_64_bits(db: Database) -> None:
    big = 1_234_567_890_123_456_789  # a real-sized snowflake
    page, ids = await posted_page(db, message_id=big, reply_id=big + 1, guild_id=big - 1)
    target = await db.reply_target(big + 1)
    assert target is not None and target.page.message_id == big and target.page.guild_id == big - 1
    result = await db.cast_vote(big + 1, "😀", big + 2)
    assert result.status == "added"
    (row,) = await db.export_votes()
    assert row.user_id == big + 2 and row.to_json()["user_id"] == str(big + 2)


async def test_reply_message_maps_emoji_to_coloring(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=60, reply_id=61)
    target = await db.reply_target(61)
    assert target is not None
    assert target.page.id == page_id
    assert {e: c.id for e, c in target.colorings.items()} == ids
    assert target.members == {e: m for m, e in FAMILY.items()}
    assert await db.reply_target(60) is None  # the page message itself is not a reply


async def test_colorings_record_member_versions_and_files(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=70, reply_id=71)
    target = await db.reply_target(71)
    assert target is not None and set(target.members.values()) == set(FAMILY)
    colorings = await colorings_of(db, page_id)
    assert all(c.parameters == {"strength": 1.0} for c in colorings)
    assert db.store is not None and all(db.store.exists(c.sha256) for c in colorings)
    promoted = await db.promoted_versions()
    assert set(promoted) == set(FAMILY)  # first version seen is the served one


async def test_two_colorings_cannot_share_an_emoji_on_one_message(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=80, reply_id=81)
    extra = NewColoring("openmoji", 2, "😀", png("extra"))
    with pytest.raises(Conflict):
        await db.record_colorings(page_id, [extra], message_id=81)
    assert len(await colorings_of(db, page_id)) == len(FAMILY)


async def test_unknown_page(db: Database) -> None:
    with pytest.raises(NotFound):
        await db.get_page(999_999)
    with pytest.raises(NotFound):
        await db.record_colorings(999_999, [NewColoring("fluent", 1, "🌈", png("x"))])


# -------------------------------------------------------------------- votes


async def test_vote_added_moved_unchanged_ignored(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=100, reply_id=101)
    user = 42

    added = await db.cast_vote(101, "😀", user)
    assert (added.status, added.coloring_id, added.member) == ("added", ids["😀"], "openmoji")

    moved = await db.cast_vote(101, "🌈", user)
    assert moved.status == "moved"
    assert (moved.previous_emoji, moved.previous_coloring_id) == ("😀", ids["😀"])

    assert (await db.cast_vote(101, "🌈", user)).status == "unchanged"
    assert (await db.cast_vote(101, "👍", user)).status == "ignored"  # not a member
    assert (await db.cast_vote(999, "😀", user)).status == "ignored"  # not our message

    live = await db.live_votes(page_id=page_id)
    assert [(v.user_id, v.coloring_id) for v in live] == [(user, ids["🌈"])]
    history = await vote_history(db, page_id, user)
    assert [v.coloring_id for v in history] == [ids["😀"], ids["🌈"]]
    assert history[0].removed_at is not None and history[1].removed_at is None


async def test_variation_selector_does_not_split_votes(db: Database) -> None:
    await posted_page(db, message_id=110, reply_id=111, members={"clipart": "✏\ufe0f"})
    result = await db.cast_vote(111, "✏", 5)
    assert result.status == "added" and result.member == "clipart"
    assert (await db.cast_vote(111, "✏\ufe0f", 5)).status == "unchanged"


async def test_remove_vote_only_ends_the_live_one(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=120, reply_id=121)
    await db.cast_vote(121, "😀", 1)
    await db.cast_vote(121, "🎨", 1)
    # The old reaction going away (e.g. the bot tidying up) changes nothing ...
    assert not await db.remove_vote(121, "😀", 1)
    assert [v.coloring_id for v in await db.live_votes(page_id=page_id)] == [ids["🎨"]]
    # ... removing the live one ends it; a new reaction adds a vote again.
    assert await db.remove_vote(121, "🎨", 1)
    assert await db.live_votes(page_id=page_id) == []
    assert not await db.remove_vote(121, "🎨", 1)
    assert (await db.cast_vote(121, "📎", 1)).status == "added"


async def test_votes_on_different_pages_are_independent(db: Database) -> None:
    p1, _ = await posted_page(db, message_id=130, reply_id=131)
    p2, _ = await posted_page(db, message_id=132, reply_id=133)
    await db.cast_vote(131, "😀", 1)
    await db.cast_vote(133, "🌈", 1)
    await db.cast_vote(131, "🌈", 2)
    assert len(await db.live_votes()) == 3
    assert len(await db.live_votes(user_id=1)) == 2
    assert len(await db.live_votes(GUILD)) == 3
    assert await db.live_votes(guild_id=GUILD + 1) == []


async def test_database_refuses_a_second_live_vote(db: Database) -> None:
    # Not the repository's care alone: the partial unique index refuses it.
    page_id, ids = await posted_page(db, message_id=140, reply_id=141)

    async def two_live(s) -> None:
        s.add(Vote(user_id=1, page_id=page_id, coloring_id=ids["😀"]))
        s.add(Vote(user_id=1, page_id=page_id, coloring_id=ids["🌈"]))
        await s.flush()

    with pytest.raises(Conflict):
        await db.run(two_live)

    async def removed_and_live(s) -> None:
        now = datetime.now(UTC)
        s.add(Vote(user_id=1, page_id=page_id, coloring_id=ids["😀"], removed_at=now))
        s.add(Vote(user_id=1, page_id=page_id, coloring_id=ids["😀"], removed_at=now))
        s.add(Vote(user_id=1, page_id=page_id, coloring_id=ids["🌈"]))
        await s.flush()

    await db.run(removed_and_live)

    async def count(s) -> int:
        return len((await s.execute(select(Vote).where(Vote.user_id == 1))).all())

    assert await db.run(count, write=False) == 3


async def test_a_vote_must_name_a_coloring_of_its_page(db: Database) -> None:
    p1, ids1 = await posted_page(db, message_id=150, reply_id=151)
    p2, _ = await posted_page(db, message_id=152, reply_id=153)

    async def mismatched(s) -> None:
        s.add(Vote(user_id=1, page_id=p2, coloring_id=ids1["😀"]))
        await s.flush()

    with pytest.raises(Conflict):
        await db.run(mismatched)


async def test_export_rows_and_json(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=160, reply_id=161, channel_id=77)
    await db.cast_vote(161, "😀", 1)
    await db.cast_vote(161, "🎨", 2)
    await db.cast_vote(161, "🌈", 2)  # moved: only the live one is exported
    rows = await db.export_votes()
    assert [(r.user_id, r.member, r.emoji) for r in rows] == [
        (1, "openmoji", "😀"),
        (2, "fluent", "🌈"),
    ]
    data = rows[1].to_json()
    assert data["guild_id"] == str(GUILD) and data["channel_id"] == "77"
    assert data["message_id"] == "161" and data["page_message_id"] == "160"
    assert data["member_version"] == 1 and len(data["page_sha256"]) == 64
    assert datetime.fromisoformat(data["voted_at"]).tzinfo is not None
    assert await db.export_votes(guild_id=GUILD + 5) == []


async def test_voted_pages_give_the_alternatives_seen(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=180, reply_id=181)
    await db.cast_vote(181, "📎", 9, source="simulated")
    (vp,) = await db.voted_pages()
    assert vp.page_id == page_id and vp.user_id == 9 and vp.source == "simulated"
    assert vp.voted.member == "clipart"
    assert sorted(o.member for o in vp.others) == ["artworks", "fluent", "openmoji"]
    assert vp.page_kind == "lineart"


# ------------------------------------------------------------------- forget


async def test_forget_user_deletes_their_pages_votes_and_unshared_files(db: Database) -> None:
    shared = png("shared")
    mine, _ = await posted_page(db, message_id=190, reply_id=191, author_id=1, image=shared)
    also_mine, _ = await posted_page(db, message_id=192, reply_id=193, author_id=1)
    theirs, _ = await posted_page(db, message_id=194, reply_id=195, author_id=2, image=shared)
    await db.cast_vote(191, "😀", 2)  # someone else's vote on my page
    await db.cast_vote(195, "😀", 1)  # my vote on their page
    await db.cast_vote(195, "🌈", 1)
    await db.cast_vote(195, "🎨", 3)
    unshared = (await db.get_page(also_mine)).sha256
    my_coloring_files = [c.sha256 for c in await colorings_of(db, mine)]

    result = await db.forget_user(1)

    assert (result.pages, result.colorings, result.votes) == (2, 8, 3)
    assert [p.id for p in await db.pages()] == [theirs]
    assert [(v.user_id, v.page_id) for v in await db.live_votes()] == [(3, theirs)]
    assert db.store is not None
    assert db.store.exists((await db.get_page(theirs)).sha256)  # still used by page 2
    assert not db.store.exists(unshared)
    assert not any(db.store.exists(sha) for sha in my_coloring_files)
    assert result.files == 1 + 8  # my unshared page and my pages' 8 colorings
    assert (await db.forget_user(1)).pages == 0


# ---------------------------------------------------------- member versions


async def test_candidate_versions_promote_keep_and_rollback(db: Database) -> None:
    v1 = await db.ensure_member_version("fluent", 1, weights_sha256="a" * 64)
    assert v1.promoted
    run = await db.start_training_run("retrain", member="fluent", config={"votes": 2000})
    v2 = await db.add_member_version(
        "fluent", weights_sha256="b" * 64, training_run_id=run.id, evaluation={"l1": 0.1}
    )
    assert (v2.version, v2.parent_id, v2.promoted) == (2, v1.id, False)
    await db.finish_training_run(run.id, metrics={"judge_acc": 0.83})
    assert (await db.get_training_run(run.id)).status == "done"

    v3 = await db.add_member_version("fluent")
    kept = await db.keep_unpromoted("fluent", v3.version, "judge margin 0.01 < 0.05")
    assert not kept.promoted and kept.reason.startswith("judge margin")

    promoted = await db.promote("fluent", 2, "beats v1 by 0.12")
    assert promoted.promoted and promoted.reason == "beats v1 by 0.12"
    assert (await db.promoted_versions())["fluent"].version == 2
    assert not (await db.get_member_version("fluent", 1)).promoted

    back = await db.rollback("fluent")
    assert back.version == 1 and back.promoted
    assert (await db.promoted_versions())["fluent"].version == 1
    assert (await db.get_member_version("fluent", 2)).reason == "rolled back"

    with pytest.raises(NotFound):
        await db.rollback("fluent")  # v1 has no parent
    with pytest.raises(NotFound):
        await db.promote("fluent", 99)
    with pytest.raises(Conflict):
        await db.keep_unpromoted("fluent", 1, "no")
    assert [mv.version for mv in await db.member_versions("fluent")] == [1, 2, 3]


async def test_database_keeps_one_promoted_version_per_member(db: Database) -> None:
    await db.ensure_member_version("clipart", 1)
    await db.add_member_version("clipart", version=2)

    async def both(s) -> None:
        from sqlalchemy import update

        from db.models import MemberVersion

        await s.execute(
            update(MemberVersion).where(MemberVersion.member == "clipart").values(promoted=True)
        )

    with pytest.raises(Conflict):
        await db.run(both)


async def test_failed_training_run(db: Database) -> None:
    run = await db.start_training_run("judge")
    failed = await db.finish_training_run(run.id, error="out of memory")
    assert (failed.status, failed.error) == ("failed", "out of memory")
    assert failed.finished_at is not None

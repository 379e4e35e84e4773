"""The repository API the bot and the trainer use, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from db import Conflict, Database, NewColoring, NotFound
from db.models import Vote
from tests.db.helpers import FAMILY, png, posted_page

GUILD = 1001


# ----------------------------------------------------------- guilds, channels


async def test_ensure_guild_creates_once_and_keeps_the_name_fresh(db: Database) -> None:
    first = await db.ensure_guild(GUILD, "Family")
    again = await db.ensure_guild(GUILD, "Family room")
    assert first.id == again.id == GUILD
    assert again.name == "Family room"
    assert again.default_strength == 1.0
    assert again.created_at.tzinfo is not None


async def test_guild_settings_update_only_what_is_given(db: Database) -> None:
    await db.update_guild_settings(GUILD, default_strength=1.5, settings={"sheet": True})
    guild = await db.update_guild_settings(GUILD, settings={"lang": "nl"})
    assert guild.default_strength == 1.5
    assert guild.settings == {"sheet": True, "lang": "nl"}
    assert guild.default_fill is None


async def test_explicit_channel_choice_wins_over_default_names(db: Database) -> None:
    defaults = ("coloring",)
    assert await db.is_channel_enabled(GUILD, 11, "coloring", defaults)
    assert not await db.is_channel_enabled(GUILD, 12, "general", defaults)

    await db.enable_channel(GUILD, 12, changed_by=7)
    await db.disable_channel(GUILD, 11)
    assert await db.is_channel_enabled(GUILD, 12, "general", defaults)
    assert not await db.is_channel_enabled(GUILD, 11, "coloring", defaults)
    assert await db.enabled_channels(GUILD) == [12]

    await db.enable_channel(GUILD, 11)
    assert await db.enabled_channels(GUILD) == [11, 12]


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
    refs = await db.page_colorings(page_id)
    assert {r.member for r in refs} == set(FAMILY)
    assert all(r.version == 1 and r.parameters == {"strength": 1.0} for r in refs)
    assert db.store is not None and all(db.store.exists(r.sha256) for r in refs)
    promoted = await db.promoted_versions()
    assert set(promoted) == set(FAMILY)  # first version seen is the served one


async def test_two_colorings_cannot_share_an_emoji_on_one_message(db: Database) -> None:
    page_id, ids = await posted_page(db, message_id=80, reply_id=81)
    (extra,) = await db.record_colorings(page_id, [NewColoring("openmoji", 2, "😀", png("extra"))])
    with pytest.raises(Conflict):
        await db.link_reply(81, [extra.id])


async def test_set_page_info_and_unknown_page(db: Database) -> None:
    page_id, _ = await posted_page(db, message_id=90, reply_id=91)
    await db.set_page_info(page_id, kind="photo", width=640, height=480)
    page = await db.get_page(page_id)
    assert (page.kind, page.width, page.height) == ("photo", 640, 480)
    with pytest.raises(NotFound):
        await db.set_page_info(999_999, kind="photo")
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
    history = await db.vote_history(page_id, user)
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


async def test_vote_counts_per_member(db: Database) -> None:
    await posted_page(db, message_id=170, reply_id=171)
    await posted_page(db, message_id=172, reply_id=173)
    for user in (1, 2, 3):
        await db.cast_vote(171, "🎨", user)
    await db.cast_vote(173, "🎨", 1)
    await db.cast_vote(173, "😀", 2)
    counts = await db.vote_counts()
    assert [(c.member, c.votes, c.shown) for c in counts[:2]] == [
        ("artworks", 4, 2),
        ("openmoji", 1, 2),
    ]
    assert {c.member for c in counts} == set(FAMILY)
    assert counts[0].share == 2.0


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
    my_coloring_files = [r.sha256 for r in await db.page_colorings(mine)]

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


async def test_collect_garbage_deletes_only_old_unreferenced_files(db: Database) -> None:
    import os

    page_id, _ = await posted_page(db, message_id=196, reply_id=197)
    assert db.store is not None
    orphan = db.store.put(png("a write that never made it to the database"))
    fresh_orphan = db.store.put(png("being recorded right now"))
    old = db.store.path(orphan).stat().st_mtime - 7200
    os.utime(db.store.path(orphan), (old, old))

    assert await db.collect_garbage() == 1
    assert not db.store.exists(orphan)
    assert db.store.exists(fresh_orphan)
    assert db.store.exists((await db.get_page(page_id)).sha256)
    assert all(db.store.exists(r.sha256) for r in await db.page_colorings(page_id))


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


# --------------------------------------------------------------------- jobs


async def test_job_claim_finish_and_retry(db: Database) -> None:
    job = await db.create_job("colorize", {"page": 1}, max_attempts=2)
    assert await db.claim_job("w1", kinds=["retrain"]) is None

    claimed = await db.claim_job("w1")
    assert claimed is not None and claimed.id == job.id
    assert (claimed.status, claimed.attempts, claimed.worker) == ("running", 1, "w1")
    assert await db.claim_job("w2") is None  # taken

    again = await db.fail_job(job.id, "worker error", backoff_seconds=0)
    assert (again.status, again.error) == ("queued", "worker error")
    second = await db.claim_job("w2")
    assert second is not None and second.attempts == 2
    final = await db.fail_job(job.id, "worker error again")
    assert final.status == "failed" and final.finished_at is not None

    other = await db.create_job("colorize")
    await db.claim_job("w1")
    done = await db.finish_job(other.id, {"colorings": 4})
    assert (done.status, done.result) == ("done", {"colorings": 4})
    with pytest.raises(NotFound):
        await db.get_job(123_456)


async def test_job_of_a_dead_worker_is_claimed_again(db: Database) -> None:
    job = await db.create_job("colorize", max_attempts=2)
    await db.claim_job("dies", lease_seconds=-1)  # lease already over
    assert not await db.extend_lease(job.id, "someone-else")
    reclaimed = await db.claim_job("healthy", lease_seconds=-1)
    assert reclaimed is not None and reclaimed.worker == "healthy" and reclaimed.attempts == 2
    # Its last attempt's lease ran out too: failed, not handed out a third time.
    assert await db.claim_job("third") is None
    assert (await db.get_job(job.id)).status == "failed"


async def test_job_backoff_delays_the_next_claim(db: Database) -> None:
    job = await db.create_job("retrain")
    await db.claim_job("w")
    await db.fail_job(job.id, "busy", backoff_seconds=3600)
    assert await db.claim_job("w") is None

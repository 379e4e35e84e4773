"""colorbot's storage: records in SQL (SQLite or PostgreSQL), images on disk.

db/ is the only place that writes SQL or knows table names. Everyone else uses
`Database`, whose methods are each one short, retried transaction:

    from db import Database, NewColoring, DatabaseUnavailable
    db = Database.from_settings(settings)   # DATABASE_URL or SQLite in COLORBOT_DATA
    await db.upgrade()                      # Alembic to head; cheap when already there
    ...
    await db.close()

Setting up
    Database(url, store_dir=None, attempts=4, **engine_kwargs)
    Database.from_settings(settings)        store under <data dir>/store
    await db.upgrade(revision="head") / schema_revision() / check_schema() / ping()
    db.store: ImageStore                    put(bytes) -> sha256, path(sha), get(sha)

Guilds and channels
    ensure_guild(guild_id, name=None) -> Guild
    update_guild_settings(guild_id, default_strength=, default_fill=, default_members=,
                          settings={...merged...}) -> Guild
    enable_channel(guild_id, channel_id, changed_by=None) / disable_channel(...)
    is_channel_enabled(guild_id, channel_id, channel_name=None, default_channels=()) -> bool
        an explicit enable/disable wins; otherwise a channel named like one of
        default_channels (Settings.default_channels, e.g. "coloring") is enabled
    enabled_channels(guild_id) -> list[int]

Pages and colorings (images are stored for you)
    record_page(image_bytes, guild_id=, channel_id=, message_id=, author_id=,
                source="discord", filename=, kind=, width=, height=) -> RecordedPage
        (.page, .created); the same image in the same message is one page
    set_page_info(page_id, kind=, width=, height=)
    get_page(page_id) -> Page; pages(guild_id=None) -> list[Page]
    record_colorings(page_id, [NewColoring(member, version, emoji, png_bytes,
                     parameters, duration_ms, timings)], message_id=None) -> list[Coloring]
    link_reply(reply_message_id, coloring_ids)    reactions on that message now vote
    reply_target(message_id) -> ReplyTarget | None   (.page, .colorings[emoji], .members[emoji])
    page_colorings(page_id) -> list[ColoringRef]

Votes (raw reaction events: message id, emoji, user id; works after restarts)
    cast_vote(message_id, emoji, user_id, source="discord", at=None) -> VoteResult
        status "added" | "moved" (.previous_emoji: the reaction to take away) |
        "unchanged" | "ignored" (not a coloring of ours). One live vote per
        (user, page), enforced by a partial unique index; moves are atomic and
        serialized per (user, page), safe under any concurrency.
    remove_vote(message_id, emoji, user_id) -> bool
    live_votes(guild_id=None, page_id=None, user_id=None) -> list[Vote]
    vote_history(page_id, user_id=None) -> list[Vote]     removed ones included
    export_votes(guild_id=None) -> list[VoteExportRow]    (.to_json(): `votes export`)
    vote_counts(guild_id=None) -> list[MemberVotes]       (/leaderboard by counts)
    voted_pages(guild_id=None) -> list[VotedPage]         vote + alternatives seen
    forget_user(user_id) -> ForgetResult                  /forget (files too)
    collect_garbage(min_age_seconds=3600) -> int          unreferenced stored images

Family member versions and training runs
    ensure_member_version(member, version, weights_sha256=None) -> MemberVersion
        a member's first recorded version is promoted (it is what is served)
    add_member_version(member, version=None (next), parent_version=None (promoted),
                       weights_sha256=, training_run_id=, evaluation=) -> MemberVersion
    get_member_version(member, version); member_versions(member=None);
    promoted_versions() -> {member: MemberVersion}; set_evaluation(member, version, {...})
    promote(member, version, reason="") ; keep_unpromoted(member, version, reason)
    rollback(member, reason="rolled back") -> the parent, promoted again
    start_training_run(kind, member=None, config=None) -> TrainingRun
    finish_training_run(run_id, metrics=None, error=None); get_training_run(run_id)

Jobs (state survives a dying worker)
    create_job(kind, payload=None, page_id=None, max_attempts=3) -> Job
    claim_job(worker, kinds=None, lease_seconds=300) -> Job | None
    extend_lease(job_id, worker, lease_seconds) -> bool
    finish_job(job_id, result=None); fail_job(job_id, error, retry=True); get_job(job_id)

Errors (db/errors.py)
    DatabaseUnavailable   the database did not answer or stayed busy after retries;
                          `.user_message` is kind enough for Discord
    NotFound, Conflict    (all derive from StorageError)

Returned ORM objects (Page, Coloring, Vote, MemberVersion, ...) are detached and fully
loaded; they have no relationships to lazy-load. Snowflakes are ints; times are
UTC-aware datetimes. Schema changes only through Alembic (db/migrations/); new
revision: `colorbot db revision -m "what" --autogenerate`.
"""

from db.errors import Conflict, DatabaseUnavailable, NotFound, StorageError
from db.models import Coloring, Guild, GuildChannel, Job, MemberVersion, Page, TrainingRun, Vote
from db.repo import Database, normalize_emoji
from db.results import (
    ColoringRef,
    ForgetResult,
    MemberVotes,
    NewColoring,
    RecordedPage,
    ReplyTarget,
    VotedPage,
    VoteExportRow,
    VoteResult,
)
from db.store import ImageStore

__all__ = [
    "Coloring",
    "ColoringRef",
    "Conflict",
    "Database",
    "DatabaseUnavailable",
    "ForgetResult",
    "Guild",
    "GuildChannel",
    "ImageStore",
    "Job",
    "MemberVersion",
    "MemberVotes",
    "NewColoring",
    "NotFound",
    "Page",
    "RecordedPage",
    "ReplyTarget",
    "StorageError",
    "TrainingRun",
    "Vote",
    "VoteExportRow",
    "VoteResult",
    "VotedPage",
    "normalize_emoji",
]

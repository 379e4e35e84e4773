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
    await db.upgrade(revision="head") / schema_revision() / check_schema()
    db.store: ImageStore                    put(bytes) -> sha256, path(sha), get(sha)
    await db.read_image(sha) -> bytes        FileNotFoundError when not stored

Guilds and channels (db/channels.py)
    ensure_guild(guild_id, name=None) -> Guild
    update_guild_settings(guild_id, settings={...merged key by key...}) -> Guild
    set_channel_enabled(guild_id, channel_id, enabled, changed_by=None)
    is_channel_enabled(guild_id, channel_id, channel_name=None, default_channels=()) -> bool
        an explicit enable/disable wins; otherwise a channel named like one of
        default_channels (Settings.default_channels, e.g. "coloring") is enabled

Pages and colorings (db/pages.py; images are stored for you)
    record_page(image_bytes, guild_id=, channel_id=, message_id=, author_id=,
                source="discord", filename=, kind=, width=, height=) -> RecordedPage
        (.page, .created); the same image in the same message is one page
    get_page(page_id) -> Page; pages(guild_id=None) -> list[Page], oldest first
    record_colorings(page_id, [NewColoring(member, version, emoji, png_bytes,
                     parameters, duration_ms, timings)], message_id=) -> list[Coloring]
        message_id: the reply showing them; reactions on it vote for them
    reply_target(message_id) -> ReplyTarget | None   (.page, .colorings[emoji], .members[emoji])

Votes (db/votes.py; raw reaction events: message id, emoji, user id; works after restarts)
    cast_vote(message_id, emoji, user_id, source="discord", at=None) -> VoteResult
        status "added" | "moved" (.previous_emoji: the reaction to take away) |
        "unchanged" | "ignored" (not a coloring of ours). One live vote per
        (user, page), enforced by a partial unique index; moves are atomic and
        serialized per (user, page), safe under any concurrency.
    remove_vote(message_id, emoji, user_id) -> bool
    live_votes(guild_id=None, page_id=None, user_id=None) -> list[Vote]
    export_votes(guild_id=None) -> list[VoteExportRow]    (.to_json(): `votes export`)
    voted_pages(guild_id=None) -> list[VotedPage]         vote + alternatives seen: what
        the vote board (training/votes.py) and the judge learn from
    forget_user(user_id) -> ForgetResult                  /forget, files too (db/forget.py)

Family member versions (db/versions.py) and training runs (db/runs.py)
    ensure_member_version(member, version, weights_sha256=None) -> MemberVersion
        a member's first recorded version is promoted (it is what is served)
    add_member_version(member, version=None (next), parent_version=None (promoted),
                       weights_sha256=, training_run_id=, evaluation=) -> MemberVersion
    get_member_version(member, version); member_versions(member=None);
    promoted_versions() -> {member: MemberVersion}
    promote(member, version, reason="") ; keep_unpromoted(member, version, reason)
    rollback(member, reason="rolled back") -> the parent, promoted again
        (models/registry.py keeps these and the family's files in step)
    start_training_run(kind, member=None, config=None) -> TrainingRun
    finish_training_run(run_id, metrics=None, error=None); get_training_run(run_id)

Keeping the store and the rows consistent: db/check.py (`colorbot db check`, `db gc`).
The public web page's reads: db/web_queries.py.

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
from db.models import Coloring, Guild, GuildChannel, MemberVersion, Page, TrainingRun, Vote
from db.repo import Database, normalize_emoji
from db.results import (
    ColoringRef,
    ForgetResult,
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
    "MemberVersion",
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

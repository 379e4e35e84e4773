"""`Database`: every read and write the bot, the web page and the trainer make.

Each operation is one short transaction of its own, retried on transient failures
(and, where a concurrent writer can win a race, on constraint conflicts); what cannot
be done raises `DatabaseUnavailable`, `NotFound` or `Conflict` (db/errors.py). The
queries live with their noun, one module each; db/core.py has the engine, the store
and the transaction runner they share. See db/__init__.py for the whole API.
"""

from __future__ import annotations

from db.channels import ChannelQueries
from db.forget import ForgetQueries
from db.pages import PageQueries, normalize_emoji
from db.runs import TrainingRunQueries
from db.versions import VersionQueries
from db.votes import VoteQueries

__all__ = ["Database", "normalize_emoji"]


class Database(
    ChannelQueries, PageQueries, VoteQueries, ForgetQueries, VersionQueries, TrainingRunQueries
):
    """colorbot's storage: `await db.cast_vote(...)`, `await db.record_page(...)` ...

    db = Database.from_settings(settings)      # or Database(url, store_dir=...)
    await db.upgrade()                         # migrate to head (idempotent)
    ...
    await db.close()
    """

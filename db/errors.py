"""What db/ raises. Callers catch these, not SQLAlchemy's or a driver's exceptions."""

from __future__ import annotations


class StorageError(Exception):
    """Base of everything db/ raises on purpose."""


class DatabaseUnavailable(StorageError):
    """The database did not answer, or stayed busy, after a few retries.

    `user_message` is short and kind enough to show in Discord; the cause (chained
    as `__cause__`) belongs in the log.
    """

    user_message = "I can't reach my notebook right now - please try again in a minute."


class NotFound(StorageError):
    """The record asked for does not exist (e.g. promoting an unknown version)."""


class Conflict(StorageError):
    """The change contradicts what is stored (e.g. a reply message already linked)."""

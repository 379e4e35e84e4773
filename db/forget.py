"""`/forget`: a user's pages, colorings and votes deleted, and the stored images
nothing refers to any more."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import delete, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import DatabaseCore, changed_rows
from db.models import Coloring, DuelVote, Page, Vote
from db.results import ForgetResult

log = logging.getLogger(__name__)


class ForgetQueries(DatabaseCore):
    async def forget_user(self, user_id: int) -> ForgetResult:
        """`/forget`: delete the user's pages (with every coloring and vote on them),
        all of the user's votes (history and duel votes too), and stored images nothing
        else uses."""

        async def tx(s: AsyncSession) -> tuple[ForgetResult, set[str]]:
            own_pages = select(Page.id).where(Page.author_id == user_id)
            shas = set(
                (await s.execute(select(Page.sha256).where(Page.author_id == user_id))).scalars()
            )
            shas |= set(
                (
                    await s.execute(select(Coloring.sha256).where(Coloring.page_id.in_(own_pages)))
                ).scalars()
            )
            votes = await changed_rows(
                s, delete(Vote).where(or_(Vote.user_id == user_id, Vote.page_id.in_(own_pages)))
            )
            # Duel votes too, on anyone's duels (those on the user's own pages go with them).
            votes += await changed_rows(s, delete(DuelVote).where(DuelVote.user_id == user_id))
            colorings = await changed_rows(
                s, delete(Coloring).where(Coloring.page_id.in_(own_pages))
            )
            pages = await changed_rows(s, delete(Page).where(Page.author_id == user_id))
            return ForgetResult(pages, colorings, votes, 0), shas

        result, candidates = await self.run(tx)
        files = await self._delete_unreferenced(candidates)
        return ForgetResult(result.pages, result.colorings, result.votes, files)

    async def _delete_unreferenced(self, candidates: set[str]) -> int:
        """Delete stored images among `candidates` that no page or coloring uses."""
        if self.store is None or not candidates:
            return 0

        async def tx(s: AsyncSession) -> set[str]:
            used = union(
                select(Page.sha256).where(Page.sha256.in_(candidates)),
                select(Coloring.sha256).where(Coloring.sha256.in_(candidates)),
            )
            return set((await s.execute(used)).scalars())

        still_used = await self.run(tx, write=False)
        return await asyncio.to_thread(self._delete_files, candidates - still_used)

    def _delete_files(self, shas: Iterable[str]) -> int:
        """Delete stored files; one that cannot be deleted is logged, not raised (the
        records are gone already; `colorbot db check --repair` takes it later)."""
        assert self.store is not None
        deleted = 0
        for sha in shas:
            try:
                deleted += self.store.delete(sha)
            except OSError:
                log.warning("could not delete stored image %s", sha, exc_info=True)
        return deleted

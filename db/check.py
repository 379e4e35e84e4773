"""Keeping the database and the image store consistent with each other.

Files are written before the record that names them commits (temporary file, fsync,
rename, then the transaction), so a crash at any instant can leave an *orphan*: a
stored file no row refers to, or a temporary `.tmp-*.part` file. It can never leave a
row whose file is missing. `check_storage` finds both kinds of junk, rows whose file is
missing anyway (a disk restored from an older backup, a file deleted by hand) and pages
left without colorings (the bot stopped between recording a page and its colorings);
with `repair=True` it removes what can be removed. The bot runs it at start-up and then
periodically; `colorbot db check [--repair]` and `colorbot db gc` run it by hand.

Files and rows younger than `min_age_s` are left alone: they may belong to a record
another process is writing right now.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import changed_rows
from db.models import Coloring, Page, Vote
from db.types import utcnow

if TYPE_CHECKING:
    from db.repo import Database

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# How old an unreferenced file or a page without colorings must be before it is junk.
DEFAULT_MIN_AGE_S = 600.0


@dataclass
class StorageReport:
    """What `check_storage` found (and, with repair, removed)."""

    orphans: list[str] = field(default_factory=list)  # store files no row uses
    stale_parts: list[str] = field(default_factory=list)  # temp files, other junk (paths)
    young: int = 0  # unreferenced files younger than min_age (left alone)
    missing_page_files: list[int] = field(default_factory=list)  # page ids
    missing_coloring_files: list[int] = field(default_factory=list)  # coloring ids
    pages_without_colorings: list[int] = field(default_factory=list)  # page ids
    repaired: bool = False
    removed_files: int = 0
    removed_pages: int = 0

    @property
    def problems(self) -> int:
        return (len(self.orphans) + len(self.stale_parts) + len(self.missing_page_files)
                + len(self.missing_coloring_files) + len(self.pages_without_colorings))

    @property
    def unrepairable(self) -> int:
        """Rows whose file is missing: nothing brings the file back (colorings keep
        their votes, so they are reported, not deleted)."""
        return len(self.missing_coloring_files)

    def lines(self) -> list[str]:
        verb = "removed" if self.repaired else "found"
        out = [
            f"orphan files: {len(self.orphans)}"
            + (f" ({verb})" if self.orphans else ""),
            f"stale temporary files: {len(self.stale_parts)}"
            + (f" ({verb})" if self.stale_parts else ""),
            f"pages without colorings: {len(self.pages_without_colorings)}"
            + (f" ({verb})" if self.pages_without_colorings else ""),
            f"pages whose file is missing: {len(self.missing_page_files)}",
            f"colorings whose file is missing: {len(self.missing_coloring_files)}",
        ]
        if self.young:
            out.append(f"recent unreferenced files left alone: {self.young}")
        return out


def _scan(root: Path) -> tuple[dict[str, tuple[Path, float]], list[tuple[Path, float]]]:
    """(stored files by sha -> (path, mtime), every other file with its mtime)."""
    stored: dict[str, tuple[Path, float]] = {}
    other: list[tuple[Path, float]] = []
    if not root.is_dir():
        return stored, other
    for folder, _, names in os.walk(root):
        base = Path(folder)
        for name in names:  # dotfiles included
            path = base / name
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue  # deleted meanwhile (another process)
            rel = path.relative_to(root).parts
            if (len(rel) == 3 and _SHA256.match(name) and rel[0] == name[:2]
                    and rel[1] == name[2:4]):
                stored[name] = (path, mtime)
            else:
                other.append((path, mtime))
    return stored, other


def _unlink(paths: list[Path], cutoff: float | None = None) -> int:
    """Delete `paths`; with `cutoff`, only those still last touched before it."""
    removed = 0
    for path in paths:
        try:
            if cutoff is not None and path.stat().st_mtime >= cutoff:
                continue  # stored again just now (ImageStore.put touches it)
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not delete %s", path, exc_info=True)
    return removed


async def check_storage(db: Database, *, repair: bool = False,
                        min_age_s: float = DEFAULT_MIN_AGE_S, files_only: bool = False
                        ) -> StorageReport:
    """Compare the store with the database; with `repair`, remove orphans, stale temp
    files and pages without colorings (older than `min_age_s`). `files_only` skips the
    page check (`colorbot db gc`)."""
    report = StorageReport(repaired=repair)
    store = db.store
    cutoff = time.time() - min_age_s
    row_cutoff = utcnow() - timedelta(seconds=min_age_s)

    if not files_only:
        async def lonely(s: AsyncSession) -> list[int]:
            has_coloring = exists().where(Coloring.page_id == Page.id)
            has_vote = exists().where(Vote.page_id == Page.id)
            query = select(Page.id).where(~has_coloring, ~has_vote,
                                          Page.created_at < row_cutoff)
            return list((await s.execute(query)).scalars())

        report.pages_without_colorings = await db.run(lonely, write=False)
        if repair and report.pages_without_colorings:
            ids = report.pages_without_colorings

            async def drop(s: AsyncSession) -> int:
                # Still without colorings now (a coloring may have arrived meanwhile).
                has_coloring = exists().where(Coloring.page_id == Page.id)
                has_vote = exists().where(Vote.page_id == Page.id)
                return await changed_rows(
                    s, delete(Page).where(Page.id.in_(ids), ~has_coloring, ~has_vote))

            report.removed_pages = await db.run(drop)

    if store is None:
        return report
    stored, other = await asyncio.to_thread(_scan, store.root)

    async def used(s: AsyncSession) -> set[str]:
        return set((await s.execute(union(select(Page.sha256), select(Coloring.sha256))))
                   .scalars())

    # Read the rows after listing the files: a file that appears after the listing is
    # not judged, and a row committed after it is seen (files come before rows).
    referenced = await db.run(used, write=False)
    for sha, (_, mtime) in stored.items():
        if sha in referenced:
            continue
        if mtime < cutoff:
            report.orphans.append(sha)
        else:
            report.young += 1
    report.stale_parts = [str(p) for p, mtime in other if mtime < cutoff]

    async def rows_by_sha(s: AsyncSession) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        pages = [(r.id, r.sha256) for r in (await s.execute(select(Page.id, Page.sha256)))]
        colorings = [(r.id, r.sha256)
                     for r in (await s.execute(select(Coloring.id, Coloring.sha256)))]
        return pages, colorings

    pages, colorings = await db.run(rows_by_sha, write=False)
    present = set(stored)

    def missing(rows: list[tuple[int, str]]) -> list[int]:
        # A file created after the listing exists now: look before calling it missing.
        return [i for i, sha in rows if sha not in present and not store.exists(sha)]

    report.missing_page_files = await asyncio.to_thread(missing, pages)
    report.missing_coloring_files = await asyncio.to_thread(missing, colorings)

    if repair:
        # A writer storing the same bytes now finds the file there, touches it and
        # commits its row: check each orphan is still unreferenced, and still old,
        # right before deleting it.
        async def still_unused(s: AsyncSession) -> set[str]:
            if not report.orphans:
                return set()
            rows = union(select(Page.sha256).where(Page.sha256.in_(report.orphans)),
                         select(Coloring.sha256).where(Coloring.sha256.in_(report.orphans)))
            return set(report.orphans) - set((await s.execute(rows)).scalars())

        unused = await db.run(still_unused, write=False)
        paths = [stored[sha][0] for sha in report.orphans if sha in unused]
        paths += [Path(p) for p in report.stale_parts]
        report.removed_files = await asyncio.to_thread(_unlink, paths, cutoff)
        if report.removed_pages:
            # The removed pages' files are orphans now; the next pass takes them.
            log.info("removed %d page(s) without colorings", report.removed_pages)
    return report

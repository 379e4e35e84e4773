"""Family member versions: which weights exist, which one is served, and why.

The database keeps "the served version" unique per member (a partial unique index);
models/registry.py keeps these records and the family's files in step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.core import DatabaseCore
from db.errors import Conflict, NotFound
from db.models import MemberVersion
from db.types import utcnow


async def ensure_version(
    s: AsyncSession, member: str, version: int, weights_sha256: str | None = None
) -> MemberVersion:
    """The (member, version) record inside transaction `s`, created on first sight; a
    member's first recorded version is promoted (it is what the family serves)."""
    mv = await _find(s, member, version)
    if mv is not None:
        if weights_sha256 and not mv.weights_sha256:
            mv.weights_sha256 = weights_sha256
        return mv
    has_promoted = await _promoted(s, member) is not None
    mv = MemberVersion(
        member=member,
        version=version,
        weights_sha256=weights_sha256,
        promoted=not has_promoted,
        reason="" if has_promoted else "first version seen in service",
        decided_at=None if has_promoted else utcnow(),
    )
    s.add(mv)
    await s.flush()
    return mv


class VersionQueries(DatabaseCore):
    async def ensure_member_version(
        self, member: str, version: int, *, weights_sha256: str | None = None
    ) -> MemberVersion:
        """The (member, version) record, created on first sight. A member's first
        recorded version is promoted: it is what the family serves."""

        async def tx(s: AsyncSession) -> MemberVersion:
            return await ensure_version(s, member, version, weights_sha256)

        return await self.run(tx, retry_conflicts=True)

    async def add_member_version(
        self,
        member: str,
        *,
        version: int | None = None,
        parent_version: int | None = None,
        weights_sha256: str | None = None,
        training_run_id: int | None = None,
        evaluation: dict[str, Any] | None = None,
    ) -> MemberVersion:
        """Record a new, unpromoted candidate version (what a retrain produced).

        `version` None takes the next number; `parent_version` None takes the version
        promoted now (if any) as the parent.
        """

        async def tx(s: AsyncSession) -> MemberVersion:
            if parent_version is not None:
                parent: MemberVersion | None = await _get(s, member, parent_version)
            else:
                parent = await _promoted(s, member)
            number = version
            if number is None:
                latest = await s.scalar(
                    select(func.max(MemberVersion.version)).where(MemberVersion.member == member)
                )
                number = (latest or 0) + 1
            mv = MemberVersion(
                member=member,
                version=number,
                parent_id=parent.id if parent is not None else None,
                weights_sha256=weights_sha256,
                training_run_id=training_run_id,
                evaluation=evaluation,
                promoted=False,
            )
            s.add(mv)
            await s.flush()
            return mv

        # A concurrent add of the "next" version: the retry takes the one after.
        return await self.run(tx, retry_conflicts=version is None)

    async def get_member_version(self, member: str, version: int) -> MemberVersion:
        async def tx(s: AsyncSession) -> MemberVersion:
            return await _get(s, member, version)

        return await self.run(tx, write=False)

    async def member_versions(self, member: str | None = None) -> list[MemberVersion]:
        """Every recorded version (of one member), by member then version."""

        async def tx(s: AsyncSession) -> list[MemberVersion]:
            stmt = select(MemberVersion).order_by(MemberVersion.member, MemberVersion.version)
            if member is not None:
                stmt = stmt.where(MemberVersion.member == member)
            return list((await s.execute(stmt)).scalars())

        return await self.run(tx, write=False)

    async def promoted_versions(self) -> dict[str, MemberVersion]:
        """member -> its promoted (served) version."""

        async def tx(s: AsyncSession) -> dict[str, MemberVersion]:
            rows = await s.execute(select(MemberVersion).where(MemberVersion.promoted.is_(True)))
            return {mv.member: mv for mv in rows.scalars()}

        return await self.run(tx, write=False)

    async def promote(self, member: str, version: int, reason: str = "") -> MemberVersion:
        """Make `version` the member's served version (the previous one is demoted)."""

        async def tx(s: AsyncSession) -> MemberVersion:
            mv = await _get(s, member, version)
            current = await _promoted(s, member)
            why = reason
            if current is not None and current.id != mv.id:
                current.promoted = False
                await s.flush()  # leave the "one promoted" index first
                why = why or f"promoted over v{current.version}"
            mv.promoted = True
            mv.reason = why
            mv.decided_at = utcnow()
            return mv

        return await self.run(tx, retry_conflicts=True)

    async def keep_unpromoted(self, member: str, version: int, reason: str) -> MemberVersion:
        """Record the gate's refusal: the version stays, unpromoted, with the reason."""

        async def tx(s: AsyncSession) -> MemberVersion:
            mv = await _get(s, member, version)
            if mv.promoted:
                raise Conflict(f"{member} v{version} is the promoted version; promote another")
            mv.reason = reason
            mv.decided_at = utcnow()
            return mv

        return await self.run(tx)

    async def rollback(self, member: str, reason: str = "rolled back") -> MemberVersion:
        """Demote the member's promoted version and promote its parent again; returns
        the parent. NotFound when nothing is promoted or it has no parent."""

        async def tx(s: AsyncSession) -> MemberVersion:
            current = await _promoted(s, member)
            if current is None:
                raise NotFound(f"{member} has no promoted version to roll back")
            if current.parent_id is None:
                raise NotFound(f"{member} v{current.version} has no parent to roll back to")
            parent = await s.get(MemberVersion, current.parent_id)
            assert parent is not None
            current.promoted = False
            current.reason = reason
            current.decided_at = utcnow()
            await s.flush()
            parent.promoted = True
            parent.reason = f"restored by rollback of v{current.version}"
            parent.decided_at = utcnow()
            return parent

        return await self.run(tx, retry_conflicts=True)


async def _find(s: AsyncSession, member: str, version: int) -> MemberVersion | None:
    query = select(MemberVersion).where(
        MemberVersion.member == member, MemberVersion.version == version
    )
    return (await s.execute(query)).scalar_one_or_none()


async def _get(s: AsyncSession, member: str, version: int) -> MemberVersion:
    mv = await _find(s, member, version)
    if mv is None:
        raise NotFound(f"no version {version} of member {member!r}")
    return mv


async def _promoted(s: AsyncSession, member: str) -> MemberVersion | None:
    query = select(MemberVersion).where(
        MemberVersion.member == member, MemberVersion.promoted.is_(True)
    )
    return (await s.execute(query)).scalar_one_or_none()

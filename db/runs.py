"""Training runs: what a training, retraining or judge run was given and measured."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.core import DatabaseCore
from db.errors import NotFound
from db.models import TrainingRun
from db.types import utcnow


class TrainingRunQueries(DatabaseCore):
    async def start_training_run(
        self, kind: str, *, member: str | None = None, config: dict[str, Any] | None = None
    ) -> TrainingRun:
        async def tx(s: AsyncSession) -> TrainingRun:
            run = TrainingRun(kind=kind, member=member, config=config or {}, status="running")
            s.add(run)
            await s.flush()
            return run

        return await self.run(tx)

    async def finish_training_run(
        self,
        run_id: int,
        *,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> TrainingRun:
        """Mark a run done (or failed, when `error` is given) with its metrics."""

        async def tx(s: AsyncSession) -> TrainingRun:
            run = await _get(s, run_id)
            run.status = "failed" if error else "done"
            run.metrics = metrics
            run.error = error
            run.finished_at = utcnow()
            return run

        return await self.run(tx)

    async def get_training_run(self, run_id: int) -> TrainingRun:
        async def tx(s: AsyncSession) -> TrainingRun:
            return await _get(s, run_id)

        return await self.run(tx, write=False)


async def _get(s: AsyncSession, run_id: int) -> TrainingRun:
    run = await s.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"no training run {run_id}")
    return run

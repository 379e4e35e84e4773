"""Dynamic batching per family member, Triton-style.

Each member has its own queue and its own batching task. A batch closes when it holds
`max_batch_size` pages or when the OLDEST queued page has waited `max_wait_ms`, so a
lone request never waits longer than that, and a burst fills batches at once. While a
batch runs (in a thread: torch releases the GIL), the next one gathers; pages that
waited past their deadline during the run go out immediately in the next batch.

Queues are bounded: `reserve()` refuses with `QueueFull` when a member already holds
`max_queue_size` pages (queued, or admitted and still being prepared), so an
overloaded worker answers 503 at once instead of piling up latency.

One Future per (request, member). A batch that raises fails every Future in it with
`BatchFailed` (and logs the traceback once, loudly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from models.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

# run(colorizer, member_name, pages) -> one output per page, in order. Called in a thread.
RunBatch = Callable[[Any, str, list[Any]], list[Any]]


class QueueFull(Exception):
    """The member's queue is at `max_queue_size`: come back later (HTTP 503)."""

    def __init__(self, member: str) -> None:
        super().__init__(f"the queue for {member!r} is full")
        self.member = member


class BatchFailed(Exception):
    """The batch this page was in raised; every page in it gets this error."""

    def __init__(self, member: str, batch_size: int, cause: BaseException) -> None:
        super().__init__(f"{member}: batch of {batch_size} failed: {type(cause).__name__}: {cause}")
        self.member = member
        self.batch_size = batch_size
        self.cause = cause


@dataclass
class MemberOutput:
    """What one page's Future resolves to."""

    output: Any  # the page's raw network output (or coloring), as the run function gave it
    queue_s: float  # from put() to the start of its batch
    run_s: float  # wall time of the whole batched call it was part of
    batch_size: int


@dataclass
class _Item:
    colorizer: Any  # the Colorizer the page was prepared with; its batch runs on it
    page: Any  # PreparedPage
    future: asyncio.Future[MemberOutput]
    enqueued: float  # loop.time()
    enqueued_perf: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchConfig:
    max_batch_size: int = 8
    max_wait_ms: float = 20.0
    max_queue_size: int = 64


class MemberQueue:
    """The queue and batching task of one member."""

    def __init__(
        self,
        member: str,
        run: RunBatch,
        executor: Executor,
        config: BatchConfig,
        metrics: WorkerMetrics,
    ) -> None:
        self.member = member
        self._run = run
        self._executor = executor
        self._config = config
        self._metrics = metrics
        self._items: deque[_Item] = deque()
        self._reserved = 0  # admitted, still being prepared
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._running_batch = False

    # -- admission ---------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Pages admitted and not yet taken into a batch."""
        return len(self._items) + self._reserved

    def has_room(self, n: int = 1) -> bool:
        return self.depth + n <= self._config.max_queue_size

    def reserve(self) -> None:
        self._reserved += 1
        self._publish_depth()

    def release(self) -> None:
        self._reserved -= 1
        self._publish_depth()
        self._wakeup.set()  # a closing loop may be waiting for this reservation

    def put(self, colorizer: Any, page: Any) -> asyncio.Future[MemberOutput]:
        """Queue a prepared page (consuming one reservation); its Future gets the output."""
        loop = asyncio.get_running_loop()
        self._reserved -= 1
        future: asyncio.Future[MemberOutput] = loop.create_future()
        self._items.append(_Item(colorizer, page, future, loop.time()))
        self._publish_depth()
        self._wakeup.set()
        return future

    def _publish_depth(self) -> None:
        self._metrics.queue_depth.set(self.depth, member=self.member)

    # -- the batching task -------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"batcher:{self.member}")

    async def close(self) -> None:
        """Stop taking new pages' deadlines into account: flush what is queued, then end."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    @property
    def busy(self) -> bool:
        return bool(self._items) or self._reserved > 0 or self._running_batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self._items:
                    if self._closing and self._reserved == 0:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                # The deadline is the oldest page's, not this loop's: pages that queued up
                # while the previous batch ran go out now.
                deadline = self._items[0].enqueued + self._config.max_wait_ms / 1000.0
                while len(self._items) < self._config.max_batch_size and not self._closing:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except TimeoutError:
                        break
                batch = self._take()
                if batch:
                    await self._run_batch(batch)
        finally:
            # Cancelled or crashed: nobody may wait forever on a Future.
            for item in self._items:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("the worker is stopping"))
            self._items.clear()

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._items and len(batch) < self._config.max_batch_size:
            item = self._items[0]
            if item.future.done():  # its request went away (cancelled): skip the work
                self._items.popleft()
                continue
            # A family reload swaps the Colorizer between batches: pages prepared on the
            # old one finish on the old one, and a batch never mixes the two.
            if batch and item.colorizer is not batch[0].colorizer:
                break
            batch.append(self._items.popleft())
        self._publish_depth()
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        size = len(batch)
        started = time.perf_counter()
        self._metrics.batch_size.observe(size, member=self.member)
        for item in batch:
            self._metrics.queue_seconds.observe(started - item.enqueued_perf, member=self.member)
        self._running_batch = True
        try:
            outputs = await loop.run_in_executor(
                self._executor, self._run, batch[0].colorizer, self.member, [i.page for i in batch]
            )
            if len(outputs) != size:
                raise RuntimeError(f"the batch gave {len(outputs)} outputs for {size} pages")
        except Exception as exc:
            self._metrics.batch_failures.inc(member=self.member)
            log.exception("batch of %d for member %s FAILED; failing all its requests",
                          size, self.member)
            error = BatchFailed(self.member, size, exc)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        finally:
            self._running_batch = False
        run_s = time.perf_counter() - started
        self._metrics.batch_seconds.observe(run_s, member=self.member)
        for item, output in zip(batch, outputs, strict=True):
            if not item.future.done():
                item.future.set_result(
                    MemberOutput(output, started - item.enqueued_perf, run_s, size)
                )


class Batcher:
    """The member queues of one worker."""

    def __init__(
        self, run: RunBatch, executor: Executor, config: BatchConfig, metrics: WorkerMetrics
    ) -> None:
        self._run = run
        self._executor = executor
        self.config = config
        self._metrics = metrics
        self._queues: dict[str, MemberQueue] = {}

    def ensure_members(self, names: Iterable[str]) -> None:
        """Create (and start) queues for members not seen before; a reload may add some."""
        for name in names:
            if name not in self._queues:
                queue = MemberQueue(name, self._run, self._executor, self.config, self._metrics)
                self._queues[name] = queue
                queue.start()

    def reserve(self, names: list[str]) -> None:
        """Admit one page for each member, all or none; raises QueueFull."""
        for name in names:
            if not self._queues[name].has_room():
                self._metrics.rejected.inc(reason="queue_full")
                raise QueueFull(name)
        for name in names:
            self._queues[name].reserve()

    def release(self, names: list[str]) -> None:
        """Give back reservations that will not be put (the page failed to prepare)."""
        for name in names:
            self._queues[name].release()

    def put(self, name: str, colorizer: Any, page: Any) -> asyncio.Future[MemberOutput]:
        return self._queues[name].put(colorizer, page)

    def depth(self, name: str) -> int:
        return self._queues[name].depth

    @property
    def busy(self) -> bool:
        return any(q.busy for q in self._queues.values())

    async def close(self) -> None:
        """Run what is queued (without waiting for deadlines), then stop the tasks."""
        await asyncio.gather(*(q.close() for q in self._queues.values()))

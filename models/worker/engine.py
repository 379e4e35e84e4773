"""The worker's engine: the family's Colorizer, the batcher and its threads, no HTTP.

The aiohttp app (`models.worker.app`) serves it, and the bot's embedded default
(`bot.worker_client.InProcessWorker`) calls it directly, so both batch the same way.

A request goes: admission (the member queues have room, or `Overloaded`) -> load and
prepare the page once, in the prepare threads -> one queued page per member, run in
batches by `models.worker.batcher` -> each member's coloring encoded to PNG in the
prepare threads as soon as it is ready (overlapping with other members' network runs).

All CPU work runs in threads; the event loop only moves Futures around.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from models.options import KINDS, MAX_STRENGTH, SEED_LIMIT, resolve_device
from models.worker.batcher import BatchConfig, Batcher, BatchFailed, MemberOutput, QueueFull
from models.worker.coloring import MemberColoring
from models.worker.metrics import WorkerMetrics
from models.worker.settings import WorkerSettings

if TYPE_CHECKING:  # the engine itself never imports torch or the pipeline
    from PIL import Image

    from models.pipeline import ColorizeOptions, Colorizer, PreparedPage

log = logging.getLogger(__name__)



class ColorizeError(Exception):
    """A request the engine will not or cannot serve; `message` is safe to show a user."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.retry_after = retry_after


class BadRequest(ColorizeError):
    status = 400


class Unavailable(ColorizeError):
    """Not ready, draining, or overloaded: try again (here later, or on another worker)."""

    status = 503


@dataclass
class LoadedFamily:
    """A Colorizer and what the outside world may know about its members."""

    colorizer: Colorizer
    members: list[dict[str, Any]]  # name, emoji, version, description, kind, ...
    manifest: Path | None = None  # watched for promotions
    # Members of the manifest that could not be loaded (name -> a reason safe to show);
    # the others serve, and /readyz says "degraded".
    broken: dict[str, str] = field(default_factory=dict)

    def member(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.members if m["name"] == name), None)

    @property
    def names(self) -> list[str]:
        return [m["name"] for m in self.members]


class Backend(Protocol):
    """What the engine needs from the colorizing core; tests substitute a fake."""

    @property
    def page_errors(self) -> tuple[type[Exception], ...]:
        """What `load_page` raises for a picture that is not a page (safe to show)."""
        ...

    def load(self, family_path: str | None, device: str) -> LoadedFamily: ...

    def options(self, strength: float, fill: bool | None, kind: str,
                seed: int | None = None) -> ColorizeOptions: ...

    def load_page(self, data: bytes) -> Image.Image: ...

    def predict(self, colorizer: Colorizer, name: str, pages: list[PreparedPage]) -> list[Any]:
        """One batched network call (the batch thread); one raw output per page."""
        ...

    def finish(self, colorizer: Colorizer, page: PreparedPage, output: Any) -> Image.Image:
        """A page's raw output -> its coloring; the compose threads, per page."""
        ...


BROKEN_MEMBER_REASON = "its weights could not be loaded (see the worker's log)"


def check_members(backend: Backend, family: LoadedFamily) -> LoadedFamily:
    """Drop the members that fail to load or to color a tiny page; `family.broken` names
    them. A family with one truncated weights file still serves the rest; one where
    nothing loads raises. Runs in a thread (it loads weights)."""
    check = getattr(backend, "check_member", None)
    if check is None:
        return family
    working, broken = [], dict(family.broken)
    for member in family.members:
        try:
            check(family.colorizer, member["name"])
        except Exception:  # noqa: BLE001 - any failure takes this member out, not the worker
            log.exception("member %s could not be loaded; serving the others", member["name"])
            broken[member["name"]] = BROKEN_MEMBER_REASON
        else:
            working.append(member)
    if not working:
        raise RuntimeError(f"no member of the family could be loaded: {', '.join(broken)}")
    return LoadedFamily(family.colorizer, working, family.manifest, broken)


def member_info(member: Any) -> dict[str, Any]:
    """The public face of a FamilyMember (no file paths)."""
    return {
        "name": member.name,
        "emoji": member.emoji,
        "version": member.version,
        "description": member.description,
        "kind": member.kind,
        "architecture": member.architecture,
        "trained_on": member.trained_on,
        "license": member.license,
        "work_size": member.work_size,
    }


class PipelineBackend:
    """The real thing: `models.pipeline.Colorizer` over a `models.family.Family`."""

    def __init__(self) -> None:
        from models.images import PageError

        self.page_errors = (PageError,)
        self._blank: Any = None

    def load(self, family_path: str | None, device: str) -> LoadedFamily:
        from PIL import Image

        from models.family import Family
        from models.pipeline import ColorizeOptions, Colorizer
        from models.registry import MANIFEST_NAME

        family = Family.load(family_path or None)
        colorizer = Colorizer(family, device=device)
        self._blank = colorizer.prepare(Image.new("RGB", (64, 64), "white"), ColorizeOptions())
        return LoadedFamily(
            colorizer, [member_info(m) for m in family.members], family.root / MANIFEST_NAME
        )

    def check_member(self, colorizer: Colorizer, name: str) -> None:
        """Load the member's weights and run a tiny page through it now: a broken member
        is found at load time, and the first real batch does not pay for loading."""
        [output] = self.predict(colorizer, name, [self._blank])
        self.finish(colorizer, self._blank, output)

    def options(self, strength: float, fill: bool | None, kind: str,
                seed: int | None = None) -> ColorizeOptions:
        from models.pipeline import ColorizeOptions

        return ColorizeOptions(strength=strength, fill=fill, kind=kind, seed=seed)

    def load_page(self, data: bytes) -> Image.Image:
        from models.images import load_page

        return load_page(data)

    # The batch thread runs only the network (`Colorizer.predict`); compositing at full
    # page size (`Colorizer.composite`, often costlier than the network on a CPU, and
    # pure CPU work on a GPU box) runs per page in the compose threads, in parallel with
    # each other and with the next batch's network call. A Colorizer without that split
    # gets `run_member` in the batch thread.

    def predict(self, colorizer: Colorizer, name: str, pages: list[PreparedPage]) -> list[Any]:
        import torch

        with torch.inference_mode():
            if hasattr(colorizer, "predict") and hasattr(colorizer, "composite"):
                return colorizer.predict(colorizer.family.get(name), pages)
            return colorizer.run_member(name, pages)

    def finish(self, colorizer: Colorizer, page: PreparedPage, output: Any) -> Image.Image:
        if not (hasattr(colorizer, "predict") and hasattr(colorizer, "composite")):
            return cast("Image.Image", output)  # run_member composited already
        import torch

        with torch.inference_mode():
            return colorizer.composite(page, output)


@dataclass
class EngineResult:
    page: dict[str, Any]
    colorings: list[MemberColoring] = field(default_factory=list)
    ms: float = 0.0


def encode_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    # Level 1: colorings are flat fills that compress well anyway, and level 6 costs
    # several times the CPU on a big page.
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def parse_seed(seed: Any = None) -> int | None:
    """None or "" -> None (the most likely coloring); otherwise an integer in
    [0, 2**31) (another plausible coloring, the same for the same seed)."""
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return None
    if isinstance(seed, bool):
        raise BadRequest(f"seed must be a whole number from 0 to {SEED_LIMIT - 1}")
    if isinstance(seed, int):
        value = seed
    else:
        text = str(seed).strip()
        # ASCII digits only: no sign, point, exponent, spaces or "²" (isdigit says yes)
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise BadRequest(f"seed must be a whole number from 0 to {SEED_LIMIT - 1}, "
                             f"not {text[:40]!r}")
        value = int(text)
    if not 0 <= value < SEED_LIMIT:
        raise BadRequest(f"seed must be a whole number from 0 to {SEED_LIMIT - 1}")
    return value


def parse_options(
    strength: Any = 1.0, fill: Any = None, kind: Any = "auto"
) -> tuple[float, bool | None, str]:
    """Validate the user-facing knobs (strings from a form, or Python values)."""
    try:
        strength_value = float(strength if strength not in (None, "") else 1.0)
    except (TypeError, ValueError):
        raise BadRequest(f"strength must be a number, not {str(strength)[:40]!r}") from None
    if not math.isfinite(strength_value) or not 0.0 <= strength_value <= MAX_STRENGTH:
        raise BadRequest(f"strength must be between 0 and {MAX_STRENGTH:g}")
    if isinstance(fill, str):
        lowered = fill.strip().lower()
        if lowered in ("", "auto", "none"):
            fill_value: bool | None = None
        elif lowered in ("1", "true", "yes", "on"):
            fill_value = True
        elif lowered in ("0", "false", "no", "off"):
            fill_value = False
        else:
            raise BadRequest("fill must be true, false or auto")
    else:
        fill_value = None if fill is None else bool(fill)
    kind_value = (kind or "auto").strip().lower() if isinstance(kind, str) else "auto"
    if kind_value not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}")
    return strength_value, fill_value, kind_value


def parse_members(members: Any) -> list[str] | None:
    """A comma list (or a list) of member names -> unique names in order; None: everyone."""
    if members is None:
        return None
    parts = members.split(",") if isinstance(members, str) else list(members)
    names: list[str] = []
    for part in parts:
        name = str(part).strip().lower()
        if name and name not in names:
            names.append(name)
    return names or None


class PixelBudget:
    """Admission by pixels: pages being colored hold their pixels; the rest wait, FIFO.

    Memory per page grows with its pixels, not with the number of pages, so this is
    what bounds the worker's memory. Waiting is bounded too: beyond `max_waiting`
    pixels, `acquire` refuses at once (503).
    """

    def __init__(self, capacity: int, max_waiting: int) -> None:
        self.capacity = max(1, capacity)
        self.max_waiting = max_waiting
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return sum(n for n, f in self._waiters if not f.done())

    async def acquire(self, pixels: int) -> int:
        """Take `pixels` (capped at the capacity) and return what was taken."""
        n = max(1, min(pixels, self.capacity))
        if not self._waiters and self.used + n <= self.capacity:
            self.used += n
            return n
        if self.waiting + n > self.max_waiting:
            raise QueueFull("pixels")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((n, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(n)  # granted, then the request went away
            else:
                self._wake()
            raise
        return n

    def release(self, pixels: int) -> None:
        self.used -= pixels
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.used + n > self.capacity:
                return
            self._waiters.popleft()
            self.used += n
            future.set_result(None)


class Engine:
    """Loads the family once, batches requests per member, reloads on promotion."""

    def __init__(
        self,
        settings: WorkerSettings | None = None,
        backend: Backend | None = None,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings or WorkerSettings()
        self._backend = backend
        self.metrics = metrics or WorkerMetrics()
        self.device = ""
        self.family: LoadedFamily | None = None
        self.generation = 0  # +1 per (re)load
        self.draining = False
        self._batcher: Batcher | None = None
        self._prepare_pool: ThreadPoolExecutor | None = None
        self._batch_pool: ThreadPoolExecutor | None = None
        self._reload_pool: ThreadPoolExecutor | None = None
        self._reload_lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self._manifest_stamp: tuple[float, int] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.pixels = PixelBudget(self.settings.pixel_budget, 4 * self.settings.pixel_budget)

    # -- life cycle --------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.family is not None and not self.draining

    @property
    def broken(self) -> dict[str, str]:
        """Members of the manifest this worker could not load (name -> reason)."""
        return dict(self.family.broken) if self.family else {}

    def _load(self) -> LoadedFamily:
        """Load the family and check every member (a thread)."""
        family = self.backend.load(self.settings.family_path or None, self.device)
        return check_members(self.backend, family)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = PipelineBackend()
        return self._backend

    async def start(self) -> None:
        """Load the family (off the loop) and start the batching tasks."""
        loop = asyncio.get_running_loop()
        settings = self.settings
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
        self.device = resolve_device(settings.device)
        self._reload_pool = ThreadPoolExecutor(1, thread_name_prefix="family-load")
        try:
            family = await loop.run_in_executor(self._reload_pool, self._load)
        except BaseException:
            self._reload_pool.shutdown(wait=False)
            raise
        threads = settings.batch_threads or max(1, min(4, len(family.members)))
        self._batch_pool = ThreadPoolExecutor(threads, thread_name_prefix="batch")
        self._prepare_pool = ThreadPoolExecutor(
            settings.prepare_threads or max(2, os.cpu_count() or 2), thread_name_prefix="prepare"
        )
        self._batcher = Batcher(
            self.backend.predict,
            self._batch_pool,
            BatchConfig(settings.max_batch_size, settings.max_wait_ms, settings.max_queue_size),
            self.metrics,
        )
        self._install(family)
        self._manifest_stamp = self._stamp(family.manifest)
        if settings.reload_poll_s > 0 and family.manifest is not None:
            self._watch_task = asyncio.create_task(self._watch_manifest(), name="manifest-watch")
        log.info("worker ready on %s: %s (batch <= %d, wait <= %g ms, queue <= %d)",
                 self.device, ", ".join(family.names), settings.max_batch_size,
                 settings.max_wait_ms, settings.max_queue_size)

    def begin_drain(self) -> None:
        """Stop admitting requests (readyz turns 503); those admitted still finish."""
        if not self.draining:
            log.info("draining: %d request(s) in flight", self._in_flight)
        self.draining = True
        self.metrics.ready.set(0)

    async def stop(self, timeout: float | None = None) -> None:
        """Drain: wait for requests in flight, flush the queues, stop the threads."""
        self.begin_drain()
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        timeout = self.settings.shutdown_timeout_s if timeout is None else timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("stopping with %d request(s) still in flight", self._in_flight)
        if self._batcher is not None:
            await self._batcher.close()
        for pool in (self._prepare_pool, self._batch_pool, self._reload_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped")

    def _install(self, family: LoadedFamily) -> None:
        assert self._batcher is not None
        self._batcher.ensure_members(family.names)
        self.family = family  # the swap: one assignment, between two awaits
        self.generation += 1
        if not self.draining:
            self.metrics.ready.set(1)

    # -- reloading ---------------------------------------------------------------------

    @staticmethod
    def _stamp(path: Path | None) -> tuple[float, int] | None:
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size) if stat else None

    async def reload(self) -> LoadedFamily:
        """Build a new Colorizer off the loop and swap it in between batches.

        Requests already admitted finish on the Colorizer they were prepared with. If
        loading fails, the old family keeps serving and the error is raised.
        """
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            stamp = self._stamp(self.family.manifest if self.family else None)
            try:
                family = await loop.run_in_executor(self._reload_pool, self._load)
            except Exception:
                self.metrics.reloads.inc(result="failed")
                log.exception("family reload FAILED; the old family keeps serving")
                raise
            newly_broken = sorted(set(family.broken) - set(self.broken))
            if self.family is not None and newly_broken:
                # A broken promotion must not take a working member away.
                self.metrics.reloads.inc(result="failed")
                log.error("family reload FAILED: %s could not be loaded; the old family "
                          "keeps serving", ", ".join(newly_broken))
                raise RuntimeError(f"{', '.join(newly_broken)} could not be loaded")
            self._install(family)
            self._manifest_stamp = stamp
            self.metrics.reloads.inc(result="ok")
            log.info("family reloaded (generation %d): %s", self.generation,
                     ", ".join(f"{m['name']} v{m['version']}" for m in family.members))
            return family

    async def _watch_manifest(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_poll_s)
            if self.draining or self.family is None:
                continue
            stamp = self._stamp(self.family.manifest)
            if stamp is None or stamp == self._manifest_stamp:
                continue
            log.info("family manifest changed; reloading")
            try:
                await self.reload()
            except Exception:
                # Logged in reload(); do not retry the same broken manifest every poll.
                self._manifest_stamp = stamp

    # -- serving -----------------------------------------------------------------------

    def members_info(self) -> list[dict[str, Any]]:
        return list(self.family.members) if self.family else []

    async def colorize(
        self,
        data: bytes,
        members: Any = None,
        strength: Any = 1.0,
        fill: Any = None,
        kind: Any = "auto",
        seed: Any = None,
    ) -> EngineResult:
        """Color one page with the given members (all when None); raises ColorizeError.

        `seed` None gives each member's most likely coloring; an int in [0, 2**31)
        another plausible one, the same for the same seed.
        """
        started = time.perf_counter()
        if self.draining:
            self.metrics.rejected.inc(reason="draining")
            raise Unavailable(
                "this worker is shutting down", retry_after=self.settings.retry_after_s
            )
        family = self.family
        if family is None or self._batcher is None:
            raise Unavailable("this worker is still loading its family",
                              retry_after=self.settings.retry_after_s)
        strength_value, fill_value, kind_value = parse_options(strength, fill, kind)
        seed_value = parse_seed(seed)
        names = parse_members(members) or family.names
        missing = [n for n in names if n in family.broken]
        if missing:
            # Another worker (or this one after a fixed promotion) may have it.
            raise Unavailable(f"{', '.join(missing)} cannot color right now on this worker",
                              retry_after=self.settings.retry_after_s)
        unknown = [n for n in names if family.member(n) is None]
        if unknown:
            raise BadRequest(
                f"no family member named {', '.join(unknown)}; "
                f"the family is: {', '.join(family.names)}"
            )
        if not data:
            raise BadRequest("the image is empty")
        pixels = self._page_pixels(data)
        try:
            self._batcher.reserve(names)
        except QueueFull:
            raise Unavailable(
                "this worker is busy; try again in a moment",
                retry_after=self.settings.retry_after_s,
            ) from None
        self._in_flight += 1
        self._idle.clear()
        self.metrics.in_flight.set(self._in_flight)
        try:
            try:
                taken = await self.pixels.acquire(pixels)
            except QueueFull:
                self._batcher.release(names)
                self.metrics.rejected.inc(reason="pixels")
                raise Unavailable("this worker is busy with big pages; try again in a moment",
                                  retry_after=self.settings.retry_after_s) from None
            except BaseException:
                self._batcher.release(names)
                raise
            try:
                return await self._serve(family, data, names, strength_value, fill_value,
                                         kind_value, seed_value, started)
            finally:
                self.pixels.release(taken)
        finally:
            self._in_flight -= 1
            self.metrics.in_flight.set(self._in_flight)
            if self._in_flight == 0:
                self._idle.set()

    async def _serve(self, family: LoadedFamily, data: bytes, names: list[str], strength: float,
                     fill: bool | None, kind: str, seed: int | None,
                     started: float) -> EngineResult:
        assert self._batcher is not None
        loop = asyncio.get_running_loop()
        try:
            page, info = await loop.run_in_executor(
                self._prepare_pool, self._prepare, family.colorizer, data, strength, fill, kind,
                seed,
            )
        except BaseException:
            self._batcher.release(names)
            raise
        prepare_s = time.perf_counter() - started
        self.metrics.prepare_seconds.observe(prepare_s)
        info["prepare_ms"] = round(prepare_s * 1000, 1)
        futures = {name: self._batcher.put(name, family.colorizer, page) for name in names}
        outcomes = await asyncio.gather(
            *(self._finish_when_ready(family, name, page, fut) for name, fut in futures.items()),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            error = errors[0]
            if isinstance(error, BatchFailed):
                raise ColorizeError(f"{error.member} could not color this page") from error
            raise error
        return EngineResult(page=info, colorings=list(outcomes),  # type: ignore[arg-type]
                            ms=round((time.perf_counter() - started) * 1000, 1))

    def _page_pixels(self, data: bytes) -> int:
        """The pixels this page will be colored at (its admission cost), from its header."""
        from models.images import PageError, page_size

        try:
            width, height = page_size(data)
        except PageError as exc:
            raise BadRequest(str(exc)) from exc
        return max(1, min(width * height, self.settings.max_page_pixels))

    def _prepare(self, colorizer: Colorizer, data: bytes, strength: float, fill: bool | None,
                 kind: str, seed: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Load and analyse the page once; every member of the request shares it. Thread.

        The seed travels on the prepared page (it only steers compositing, per page), so
        pages with different seeds still share a member's batched network call."""
        from models.images import fit_pixels

        try:
            image = self.backend.load_page(data)
        except self.backend.page_errors as exc:
            raise BadRequest(str(exc)) from exc
        original = image.size
        image = fit_pixels(image, self.settings.max_page_pixels)
        try:
            options = self.backend.options(strength, fill, kind, seed)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        page = colorizer.prepare(image, options)
        info: dict[str, Any] = {"width": image.width, "height": image.height,
                                "strength": strength, "seed": seed}
        if image.size != original:
            # Colored (and returned) at the page budget's size.
            info["original_width"], info["original_height"] = original
        describe = getattr(page, "info", None)  # PreparedPage.info(): kind, fill, regions ...
        if callable(describe):
            info.update(describe())
        return page, info

    def _finish(self, colorizer: Colorizer, page: PreparedPage, output: Any) -> bytes:
        """Composite one member's output at page size and encode it. Compose thread."""
        return encode_png(self.backend.finish(colorizer, page, output))

    async def _finish_when_ready(self, family: LoadedFamily, name: str, page: Any,
                                 future: asyncio.Future[MemberOutput]) -> MemberColoring:
        queued = time.perf_counter()
        output = await future
        loop = asyncio.get_running_loop()
        png = await loop.run_in_executor(
            self._prepare_pool, self._finish, family.colorizer, page, output.output
        )
        member = family.member(name) or {}
        ms = time.perf_counter() - queued  # queue + network run + compositing + encoding
        return MemberColoring(
            member=name,
            emoji=member.get("emoji", ""),
            version=int(member.get("version", 0)),
            png=png,
            ms=round(ms * 1000, 1),
            queue_ms=round(output.queue_s * 1000, 1),
            run_ms=round(output.run_s * 1000, 1),
            batch_size=output.batch_size,
        )

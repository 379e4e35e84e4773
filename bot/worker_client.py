"""How the bot gets colorings: from worker services over HTTP, or in-process.

Both clients have the same async interface:

    worker = make_worker(settings)            # WorkerClient if WORKER_URLS, else InProcessWorker
    result = await worker.colorize(png_bytes, members=["openmoji"], strength=1.2, seed=7)
    for coloring in result.colorings:         # in the order asked (all members when None)
        coloring.member, coloring.emoji, coloring.version, coloring.png, coloring.ms
    members = await worker.family()           # [{"name", "emoji", "version", "description", ...}]
    await worker.reload()                     # after a promotion: every worker, admin token
    await worker.close()

Every failure reaches the caller as `WorkerError`, whose message is safe to show a user.
`WorkerClient` spreads requests over its URLs and retries on another worker after a
connection error, a timeout or a 5xx; a 4xx (bad image, unknown member, too large) is
the request's fault and is not retried.

No torch here at import time: the bot process stays small. `InProcessWorker` imports the
colorizing core when it first colors a page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from models.worker.coloring import MemberColoring

if TYPE_CHECKING:
    from colorbot.settings import Settings
    from models.worker.engine import Backend, Engine

log = logging.getLogger(__name__)

UNREACHABLE_MESSAGE = (
    "The coloring service is busy or unreachable right now. Please try again in a minute."
)


class WorkerError(Exception):
    """Coloring failed; `message` is safe to show a user.

    `status` is the worker's HTTP status when it answered (400 bad image, 413 too large,
    ...), None otherwise; `retryable` is True when trying again later may work.
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class ColorizeResult:
    colorings: list[MemberColoring]
    page: dict[str, Any] = field(default_factory=dict)  # width, height, kind, prepare_ms, ...
    worker: str = ""  # the worker URL that answered, or "in-process"
    ms: float = 0.0  # wall time the client waited, retries included
    attempts: int = 1

    def __iter__(self) -> Iterator[MemberColoring]:
        return iter(self.colorings)

    def __len__(self) -> int:
        return len(self.colorings)

    def get(self, member: str) -> MemberColoring | None:
        return next((c for c in self.colorings if c.member == member), None)

    @property
    def by_member(self) -> dict[str, MemberColoring]:
        return {c.member: c for c in self.colorings}


class Worker(Protocol):
    """What the bot codes against; both clients fit."""

    async def colorize(
        self,
        image: bytes,
        members: Sequence[str] | None = None,
        strength: float = 1.0,
        fill: bool | None = None,
        kind: str = "auto",
        seed: int | None = None,
    ) -> ColorizeResult: ...

    async def family(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def _fill_text(fill: bool | None) -> str:
    return "auto" if fill is None else ("true" if fill else "false")


def _parse_colorings(body: dict[str, Any]) -> list[MemberColoring]:
    colorings = []
    for entry in body["colorings"]:
        colorings.append(
            MemberColoring(
                member=str(entry["member"]),
                emoji=str(entry.get("emoji", "")),
                version=int(entry.get("version", 0)),
                png=base64.b64decode(entry["png_base64"], validate=True),
                ms=float(entry.get("ms", 0.0)),
                batch_size=int(entry.get("batch_size", 1)),
                queue_ms=float(entry.get("queue_ms", 0.0)),
                run_ms=float(entry.get("run_ms", 0.0)),
            )
        )
    return colorings


class _Retry(Exception):
    """This worker failed in a way another worker may not (connection, timeout, 5xx)."""

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class WorkerClient:
    """Worker services over HTTP, spread round-robin (from a random start) over `urls`.

    A request that fails with a connection error, a timeout, a 5xx or an unreadable
    answer is tried again on the NEXT worker, up to `attempts` tries in all, with a
    small growing backoff. Use one client per process (it keeps a connection pool);
    close it with `await client.close()` or `async with`.
    """

    def __init__(
        self,
        urls: Sequence[str] | str,
        timeout: float = 120.0,
        attempts: int | None = None,
        *,
        backoff_s: float = 0.2,
        connect_timeout: float = 5.0,
        token: str = "",
        admin_token: str = "",
    ) -> None:
        if isinstance(urls, str):
            urls = [u for u in urls.split(",")]
        self.urls = [u.strip().rstrip("/") for u in urls if u and u.strip()]
        if not self.urls:
            raise ValueError("WorkerClient needs at least one worker URL")
        self.timeout = timeout
        # Default: every worker once, at least two tries, at most four.
        self.attempts = attempts if attempts is not None else max(2, min(4, len(self.urls)))
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.backoff_s = backoff_s
        self.connect_timeout = connect_timeout
        self._next = random.randrange(len(self.urls))
        self._session: aiohttp.ClientSession | None = None
        # Sent as `Authorization: Bearer` when set; never logged.
        self._token = token
        # Sent instead on the admin endpoints (reload); never logged.
        self._admin_token = admin_token

    async def __aenter__(self) -> WorkerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession belongs to the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout, sock_connect=min(self.connect_timeout, self.timeout)
                ),
                headers={"User-Agent": "colorbot-worker-client",
                         **({"Authorization": f"Bearer {self._token}"} if self._token else {})},
            )
        return self._session

    def _start_index(self) -> int:
        start = self._next
        self._next = (self._next + 1) % len(self.urls)
        return start

    async def _call(
        self, method: str, path: str, make_data: Any = None
    ) -> tuple[dict[str, Any], str, int]:
        """One logical request with retries on other workers; returns (JSON, url, attempts)."""
        session = self._client_session()
        start = self._start_index()
        last: BaseException | None = None
        for attempt in range(self.attempts):
            url = self.urls[(start + attempt) % len(self.urls)]
            if attempt:
                same_worker = len(self.urls) == 1
                retry_after = last.retry_after if isinstance(last, _Retry) else 0.0
                # Another worker: a short pause; the same one: honour Retry-After (capped).
                delay = self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                if same_worker:
                    delay = max(delay, min(retry_after, 5.0))
                await asyncio.sleep(min(delay, 5.0))
            try:
                data = make_data() if make_data is not None else None
                async with session.request(method, url + path, data=data) as response:
                    body = await response.read()
                    status = response.status
                    retry_after_header = response.headers.get("Retry-After", "")
                if status >= 500 or status == 429:
                    raise _Retry(f"HTTP {status}: {_error_message(body) or 'no message'}",
                                 _seconds(retry_after_header))
                if status in (401, 403):
                    # The operator's problem, not the user's: say so in the log only.
                    log.error("worker %s refused this bot (HTTP %d): check that "
                              "COLORBOT_WORKER_TOKEN is the same for the bot and the worker",
                              url, status)
                    raise WorkerError(UNREACHABLE_MESSAGE, status=status)
                if status >= 400:
                    message = (_error_message(body)
                               or f"The worker refused the page (HTTP {status}).")
                    raise WorkerError(message, status=status)
                try:
                    payload = json.loads(body)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise _Retry(f"unreadable answer ({exc})") from exc
                return payload, url, attempt + 1
            except WorkerError:
                raise
            except _Retry as exc:
                last = exc
                log.warning("worker %s: %s (try %d of %d)", url, exc, attempt + 1, self.attempts)
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = exc
                log.warning("worker %s: %s: %s (try %d of %d)", url, type(exc).__name__, exc,
                            attempt + 1, self.attempts)
        raise WorkerError(UNREACHABLE_MESSAGE, retryable=True) from last

    async def colorize(
        self,
        image: bytes,
        members: Sequence[str] | None = None,
        strength: float = 1.0,
        fill: bool | None = None,
        kind: str = "auto",
        seed: int | None = None,
    ) -> ColorizeResult:
        """Color one page; the members' colorings in order (all members when None).

        `seed` None: each member's most likely coloring; an int in [0, 2**31): another
        plausible one, the same for the same seed (sent only when given)."""
        started = time.perf_counter()

        def form() -> aiohttp.FormData:
            # A FormData is consumed by one request: build one per try.
            data = aiohttp.FormData()
            data.add_field(
                "image", image, filename="page", content_type="application/octet-stream"
            )
            if members:
                data.add_field("members", ",".join(members))
            data.add_field("strength", repr(float(strength)))
            data.add_field("fill", _fill_text(fill))
            data.add_field("kind", kind)
            if seed is not None:
                data.add_field("seed", str(int(seed)))
            return data

        body, url, attempts = await self._call("POST", "/v1/colorize", form)
        try:
            colorings = _parse_colorings(body)
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            log.error("worker %s answered an unexpected body: %s", url, exc)
            raise WorkerError(UNREACHABLE_MESSAGE, retryable=True) from exc
        return ColorizeResult(
            colorings=colorings,
            page=dict(body.get("page") or {}),
            worker=url,
            ms=round((time.perf_counter() - started) * 1000, 1),
            attempts=attempts,
        )

    async def family(self) -> list[dict[str, Any]]:
        """The members the workers serve: name, emoji, version, description, kind, ..."""
        body, _, _ = await self._call("GET", "/v1/family")
        return list(body.get("members") or [])

    async def reload(self) -> dict[str, str]:
        """Ask EVERY worker to load the family again (after a promotion), with the admin
        token; url -> "ok" or why not. Never raises: a worker that missed it picks the
        manifest up by polling."""
        session = self._client_session()
        headers = {"Authorization": f"Bearer {self._admin_token}"} if self._admin_token else {}
        out: dict[str, str] = {}
        for url in self.urls:
            try:
                async with session.post(url + "/v1/admin/reload", headers=headers) as response:
                    body = await response.read()
                    status = response.status
                out[url] = "ok" if status == 200 else (
                    f"HTTP {status}: {_error_message(body) or 'no message'}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                out[url] = f"{type(exc).__name__}: {exc}"
            if out[url] != "ok":
                log.warning("worker %s did not reload (%s); it picks the manifest up by "
                            "polling", url, out[url])
        return out


def _error_message(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = payload.get("error") if isinstance(payload, dict) else None
    return str(message) if message else ""


def _seconds(header: str) -> float:
    try:
        return max(0.0, float(header))
    except ValueError:
        return 0.0


class InProcessWorker:
    """The worker's engine in this process (the embedded default): no HTTP, same interface.

    The family loads on first use (or `await start()`); the pipeline runs in threads with
    the same per-member batching as a worker service, so concurrent pages share batches.
    """

    def __init__(
        self,
        family_path: str | None = None,
        device: str = "auto",
        *,
        max_batch_size: int = 4,
        max_wait_ms: float = 10.0,
        max_queue_size: int = 32,
        max_page_pixels: int | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.family_path = family_path or ""
        self.device = device
        self._limits = (max_batch_size, max_wait_ms, max_queue_size)
        # The page budget holds here as in a worker service: big pages are colored at
        # this many pixels at most (None: the worker's default).
        self.max_page_pixels = max_page_pixels
        self._backend = backend  # tests: a fake colorizing core
        self._engine: Engine | None = None
        self._starting: asyncio.Lock | None = None

    async def start(self) -> None:
        """Load the family now rather than on the first page."""
        await self._get_engine()

    async def _get_engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._engine is None:
                # The colorizing core (torch) loads here, not when the bot imports us.
                from models.worker.engine import Engine
                from models.worker.settings import WorkerSettings

                batch, wait, queue = self._limits
                budget: dict[str, Any] = (
                    {"max_page_pixels": self.max_page_pixels} if self.max_page_pixels else {}
                )
                settings = WorkerSettings(
                    family_path=self.family_path, device=self.device, max_batch_size=batch,
                    max_wait_ms=wait, max_queue_size=queue, reload_poll_s=0, **budget,
                )
                engine = Engine(settings, self._backend)
                try:
                    await engine.start()
                except Exception as exc:
                    log.exception("the in-process worker could not load the family")
                    raise WorkerError("The colorizers could not be loaded; see the bot's log.",
                                      retryable=True) from exc
                self._engine = engine
        return self._engine

    async def colorize(
        self,
        image: bytes,
        members: Sequence[str] | None = None,
        strength: float = 1.0,
        fill: bool | None = None,
        kind: str = "auto",
        seed: int | None = None,
    ) -> ColorizeResult:
        from models.worker.engine import ColorizeError

        started = time.perf_counter()
        engine = await self._get_engine()
        try:
            result = await engine.colorize(image, members=list(members) if members else None,
                                           strength=strength, fill=fill, kind=kind, seed=seed)
        except ColorizeError as exc:
            if exc.status >= 500 and exc.__cause__ is not None:
                log.error("in-process coloring failed: %s", exc.message, exc_info=exc.__cause__)
            raise WorkerError(exc.message, status=exc.status,
                              retryable=exc.status >= 500) from exc
        except Exception as exc:
            log.exception("in-process coloring failed")
            raise WorkerError("Something went wrong while coloring this page.",
                              retryable=True) from exc
        return ColorizeResult(
            colorings=list(result.colorings),
            page=result.page,
            worker="in-process",
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def family(self) -> list[dict[str, Any]]:
        engine = await self._get_engine()
        return engine.members_info()

    async def reload(self) -> None:
        """Load the family again (after a promotion); pages in flight finish on the old one."""
        engine = await self._get_engine()
        await engine.reload()

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.stop()
            self._engine = None

    async def __aenter__(self) -> InProcessWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def make_worker(settings: Settings) -> WorkerClient | InProcessWorker:
    """WORKER_URLS set: a WorkerClient over them; empty: the in-process worker."""
    if settings.worker_urls:
        return WorkerClient(settings.worker_urls, token=settings.worker_token)
    return InProcessWorker(settings.family_path or None,
                           max_page_pixels=settings.max_page_pixels)

"""The worker's aiohttp application: `create_app(settings)`.

Life cycle (aiohttp's own order on SIGTERM/SIGINT through `web.run_app`, or on
`runner.cleanup()`): the listening socket closes -> `on_shutdown` marks the engine
draining (readyz 503, new colorize requests 503) -> aiohttp waits for handlers in flight
(up to `shutdown_timeout_s`) -> the cleanup context flushes the batch queues and stops
the threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from models.worker import routes
from models.worker.engine import Backend, ColorizeError, Engine
from models.worker.keys import ENGINE_KEY, METRICS_KEY, SETTINGS_KEY
from models.worker.metrics import WorkerMetrics
from models.worker.settings import WorkerSettings

log = logging.getLogger(__name__)

__all__ = ["ENGINE_KEY", "METRICS_KEY", "SETTINGS_KEY", "create_app", "run"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {}
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return web.json_response({"error": message, "status": status, **extra}, status=status,
                             headers=headers)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON `{"error": message, "status": n}`; counts and times requests."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except ColorizeError as exc:
        if exc.status >= 500 and exc.__cause__ is not None:
            log.error("colorize failed: %s (cause: %r)", exc.message, exc.__cause__)
        response = json_error(exc.status, exc.message, retry_after=exc.retry_after)
    except web.HTTPRequestEntityTooLarge as exc:
        settings = request.app[SETTINGS_KEY]
        if "fields" in (exc.text or ""):
            response = json_error(
                400, f"too many form fields: the limit is {settings.max_form_fields}")
        else:
            limit_mb = settings.max_request_bytes / (1024 * 1024)
            response = json_error(413, f"The upload is too large: the limit is {limit_mb:g} MB.")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason if not exc.text or exc.text.startswith(
            f"{exc.status}:") else exc.text)
        for header in ("Allow", "Retry-After"):
            if header in exc.headers:
                response.headers[header] = exc.headers[header]
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_error(500, "internal error in the worker")
    metrics = request.app[METRICS_KEY]
    route = _route_name(request)
    metrics.requests.inc(route=route, status=str(response.status))
    metrics.request_seconds.observe(time.perf_counter() - started, route=route)
    return response


def _engine_context(engine: Engine) -> Callable[[web.Application], AsyncIterator[None]]:
    async def engine_ctx(app: web.Application) -> AsyncIterator[None]:
        await engine.start()
        yield
        await engine.stop()

    return engine_ctx


async def _begin_drain(app: web.Application) -> None:
    app[ENGINE_KEY].begin_drain()


def create_app(settings: WorkerSettings | None = None, *, backend: Backend | None = None
               ) -> web.Application:
    """The worker app; the family loads in its startup (cleanup context).

    `backend` replaces the colorizing core (tests use a fake); default: the real pipeline.
    """
    settings = settings or WorkerSettings()
    metrics = WorkerMetrics()
    engine = Engine(settings, backend, metrics)
    app = web.Application(client_max_size=settings.max_request_bytes,
                          client_max_fields=settings.max_form_fields,
                          middlewares=[error_middleware])
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[ENGINE_KEY] = engine
    app.cleanup_ctx.append(_engine_context(engine))
    app.on_shutdown.append(_begin_drain)
    app.add_routes(routes.routes)
    return app


def server_options(settings: WorkerSettings) -> dict[str, Any]:
    """aiohttp server options from the settings (also for `aiohttp_server` in tests).

    aiohttp arms its keep-alive timer when a connection opens and closes the connection
    when it fires while no complete request has arrived: that is the header timeout.
    """
    return {"keepalive_timeout": settings.header_timeout_s}


def run(settings: WorkerSettings) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully.

    Raises `InsecureSettings` for a non-loopback address without a token.
    """
    settings.check_exposure()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_timeout_s,
        access_log=None,
        print=lambda msg: log.info("%s", msg),
        **server_options(settings),
    )

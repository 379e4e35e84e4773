"""The web page's aiohttp application: `create_app(settings)`.

Server-rendered HTML (jinja2 templates in `web/templates/`), no JavaScript. The
database is opened in a cleanup context (or given, in tests) and only read.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import jinja2
from aiohttp import web

from colorbot.settings import Settings
from db.errors import DatabaseUnavailable, StorageError
from db.repo import Database
from web import routes
from web.boards import BoardCache
from web.family import FamilyPages
from web.images import ThumbnailCache
from web.keys import (
    BOARDS_KEY,
    DB_KEY,
    FAMILY_KEY,
    SETTINGS_KEY,
    TEMPLATES_KEY,
    THUMBS_KEY,
)

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The page needs no script at all, its pictures come from here (or inline: the chart),
# and its style is inline: anything else a page ever carried would be refused.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    return env


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    html = request.app[TEMPLATES_KEY].get_template("error.html").render(
        title=title, message=message, status=status, active="")
    return web.Response(text=html, status=status, content_type="text/html")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors leave as a small HTML page; details stay in the log."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return error_page(request, 404, "Not here",
                              exc.text if exc.text and not exc.text.startswith("404")
                              else "There is nothing at this address.")
        raise
    except DatabaseUnavailable as exc:
        log.warning("database unavailable: %s", exc)
        return error_page(request, 503, "Back soon",
                          "The votes and pages are not reachable right now. Try again in a "
                          "minute; the family page still works.")
    except StorageError:
        log.exception("storage error on %s", request.path)
        return error_page(request, 500, "Something went wrong", "Try again in a minute.")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)


def _database_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def database_ctx(app: web.Application) -> AsyncIterator[None]:
        db = Database.from_settings(settings)
        app[DB_KEY] = db
        try:
            await db.check_schema()
        except DatabaseUnavailable as exc:  # the bot migrates; it may start after us
            log.warning("%s (the leaderboard and gallery answer 503 until it is)", exc)
        yield
        await db.close()

    return database_ctx


def create_app(settings: Settings, *, db: Database | None = None,
               board_ttl_s: float = 30.0, board_rounds: int = 200) -> web.Application:
    """The web page. `db` may be given ready-made (tests); otherwise the settings'
    database is opened at start-up and closed at clean-up."""
    app = web.Application(middlewares=[error_middleware])
    app.on_response_prepare.append(_security_headers)
    app[SETTINGS_KEY] = settings
    app[FAMILY_KEY] = FamilyPages(settings.family_path)
    app[THUMBS_KEY] = ThumbnailCache()
    app[BOARDS_KEY] = BoardCache(ttl_s=board_ttl_s, rounds=board_rounds)
    app[TEMPLATES_KEY] = templates()
    if db is not None:
        app[DB_KEY] = db
    else:
        app.cleanup_ctx.append(_database_context(settings))
    routes.add_routes(app)
    return app

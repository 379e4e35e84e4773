"""The web page's routes: family, leaderboard, gallery, and the pictures they show."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from db.web_queries import gallery_guilds, gallery_image_sha, gallery_pages
from web.images import FULL_SIZE, THUMB_SIZE, thumbnail_webp
from web.keys import BOARDS_KEY, DB_KEY, FAMILY_KEY, TEMPLATES_KEY, THUMBS_KEY

PAGES_PER_SCREEN = 24
IMAGE_SIZES = {"thumb": THUMB_SIZE, "large": FULL_SIZE}


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    html = request.app[TEMPLATES_KEY].get_template(template).render(**context)
    # Read live on every request (a /forget or /gallery disable shows at once).
    response = web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-cache"})
    response.enable_compression()  # cards and tables shrink ~5x: a phone on a slow link
    return response


async def family(request: web.Request) -> web.Response:
    members = await asyncio.to_thread(request.app[FAMILY_KEY].members)
    return render(request, "family.html", members=members, active="family")


async def family_file(request: web.Request) -> web.StreamResponse:
    path = request.app[FAMILY_KEY].file(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    # Named by member and version in the manifest; a promotion writes new files.
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def _emojis(request: web.Request) -> dict[str, str]:
    return {m.name: m.emoji for m in request.app[FAMILY_KEY].members()}


async def leaderboard(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    guild_id = int(request.match_info["guild"]) if "guild" in request.match_info else None
    servers = await gallery_guilds(db)
    server = None
    if guild_id is not None:
        server = next((g for g in servers if g.id == guild_id), None)
        if server is None:  # only servers that opened their page to the public
            raise web.HTTPNotFound(text="This server has not turned on its public page.")
    title = f"Leaderboard: {server.name or 'one server'}" if server else "Leaderboard: everyone"
    board = await request.app[BOARDS_KEY].board(db, guild_id, _emojis(request), title)
    return render(request, "leaderboard.html", board=board, server=server, servers=servers,
                  active="leaderboard")


def _page_number(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


async def gallery(request: web.Request) -> web.Response:
    db = request.app[DB_KEY]
    guild_id = int(request.match_info["guild"]) if "guild" in request.match_info else None
    servers = await gallery_guilds(db)
    server = None
    if guild_id is not None:
        server = next((g for g in servers if g.id == guild_id), None)
        if server is None:
            raise web.HTTPNotFound(text="This server has not turned on its gallery.")
    number = _page_number(request)
    # One more than shown tells whether there is a next screen.
    pages = await gallery_pages(db, guild_id=guild_id, limit=PAGES_PER_SCREEN + 1,
                                offset=(number - 1) * PAGES_PER_SCREEN)
    return render(request, "gallery.html", pages=pages[:PAGES_PER_SCREEN], server=server,
                  servers=servers, number=number, more=len(pages) > PAGES_PER_SCREEN,
                  emojis=_emojis(request), active="gallery")


async def image(request: web.Request) -> web.Response:
    """A page or coloring of the gallery as WebP, only while the gallery shows it."""
    kind, size_name = request.match_info["kind"], request.match_info["size"]
    record_id = int(request.match_info["id"])
    db = request.app[DB_KEY]
    sha = await gallery_image_sha(db, kind, record_id)
    if sha is None or db.store is None:
        raise web.HTTPNotFound()
    size = IMAGE_SIZES[size_name]
    etag = f'"{sha[:32]}-{size}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}  # revalidated: /forget is at once
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    thumbs = request.app[THUMBS_KEY]
    data = thumbs.get((sha, size))
    if data is None:
        try:
            original = await asyncio.to_thread(db.store.get, sha)
        except FileNotFoundError:
            raise web.HTTPNotFound() from None
        data = await asyncio.to_thread(thumbnail_webp, original, size)
        thumbs.put((sha, size), data)
    return web.Response(body=data, content_type="image/webp", headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", family, name="family")
    r.add_get("/family/files/{name}", family_file)
    r.add_get("/leaderboard", leaderboard, name="leaderboard")
    r.add_get(r"/leaderboard/{guild:\d+}", leaderboard)
    r.add_get("/gallery", gallery, name="gallery")
    r.add_get(r"/gallery/{guild:\d+}", gallery)
    r.add_get(r"/images/{kind:page|coloring}/{id:\d+}/{size:thumb|large}.webp", image)
    r.add_get("/healthz", healthz)

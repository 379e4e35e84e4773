"""The worker's HTTP routes (the contract in NOTES.md, "Worker HTTP")."""

from __future__ import annotations

import base64
import hmac

from aiohttp import web

from models.worker.engine import BadRequest, ColorizeError
from models.worker.keys import ENGINE_KEY, METRICS_KEY, SETTINGS_KEY
from models.worker.metrics import CONTENT_TYPE

routes = web.RouteTableDef()


@routes.post("/v1/colorize")
async def colorize(request: web.Request) -> web.Response:
    """multipart: `image` (file), `members` (comma list), `strength`, `fill`, `kind`."""
    engine = request.app[ENGINE_KEY]
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("send the page as multipart/form-data with an 'image' file field")
    form = await request.post()  # enforces client_max_size -> 413
    upload = form.get("image")
    if isinstance(upload, web.FileField):
        data = upload.file.read()
    elif isinstance(upload, bytes | bytearray):
        data = bytes(upload)
    else:
        raise BadRequest("the request has no 'image' file")

    def text(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    result = await engine.colorize(
        data,
        members=text("members"),
        strength=text("strength"),
        fill=text("fill"),
        kind=text("kind"),
    )
    return web.json_response(
        {
            "page": result.page,
            "colorings": [
                {
                    "member": c.member,
                    "version": c.version,
                    "emoji": c.emoji,
                    "png_base64": base64.b64encode(c.png).decode("ascii"),
                    "ms": c.ms,
                    "queue_ms": c.queue_ms,
                    "run_ms": c.run_ms,
                    "batch_size": c.batch_size,
                }
                for c in result.colorings
            ],
            "ms": result.ms,
            "generation": engine.generation,
        }
    )


@routes.get("/v1/family")
async def family(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    return web.json_response(
        {"members": engine.members_info(), "device": engine.device,
         "generation": engine.generation}
    )


@routes.post("/v1/admin/reload")
async def reload(request: web.Request) -> web.Response:
    """Load the family again (after a promotion) and swap it in without dropping requests."""
    token = request.app[SETTINGS_KEY].admin_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ColorizeError("a valid admin token is needed", status=401)
    engine = request.app[ENGINE_KEY]
    if engine.draining:
        raise ColorizeError("this worker is shutting down", status=503)
    try:
        loaded = await engine.reload()
    except Exception as exc:
        raise ColorizeError(f"reload failed, still serving the old family: {exc}") from exc
    return web.json_response(
        {"reloaded": True, "generation": engine.generation, "members": loaded.members}
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its loop answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Send traffic here: the family is loaded and the worker is not draining."""
    engine = request.app[ENGINE_KEY]
    if engine.ready:
        return web.json_response({"ready": True, "generation": engine.generation})
    reason = "draining" if engine.draining else "loading"
    return web.json_response({"ready": False, "reason": reason}, status=503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

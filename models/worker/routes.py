"""The worker's HTTP routes (the contract in NOTES.md, "Worker HTTP")."""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging

from aiohttp import BodyPartReader, web

from models.worker.engine import BadRequest, ColorizeError
from models.worker.keys import ENGINE_KEY, METRICS_KEY, SETTINGS_KEY
from models.worker.metrics import CONTENT_TYPE
from models.worker.settings import WorkerSettings

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# The fields of POST /v1/colorize; anything else is refused by name (a typo such as
# `member=` would otherwise silently color with everyone).
FORM_FIELDS = ("image", "members", "strength", "fill", "kind", "seed")
MAX_TEXT_FIELD_BYTES = 1024
MALFORMED = "the request body is not valid multipart/form-data"


def _bearer_ok(request: web.Request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return False
    return hmac.compare_digest(given.removeprefix("Bearer ").strip().encode(), token.encode())


def _unauthorized(message: str) -> ColorizeError:
    return ColorizeError(message, status=401)


def _too_large(limit: int) -> ColorizeError:
    return ColorizeError(
        f"The upload is too large: the limit is {limit / (1024 * 1024):g} MB.", status=413
    )


async def read_form(request: web.Request, settings: WorkerSettings) -> tuple[bytes, dict[str, str]]:
    """The colorize form, read as a stream: (image bytes, text fields).

    Every way a body can be wrong is a 4xx with the limit it broke: not multipart or
    malformed (400), unknown / repeated / too many fields (400), too large (413), too
    slow (408).
    """
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("send the page as multipart/form-data with an 'image' file field")
    limit = settings.max_request_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    image: bytes | None = None
    fields: dict[str, str] = {}
    seen: set[str] = set()
    total = count = 0
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    raise BadRequest("nested multipart bodies are not accepted")
                count += 1
                if count > settings.max_form_fields:
                    raise BadRequest(
                        f"too many form fields: the limit is {settings.max_form_fields}")
                name = part.name
                if not name:
                    raise BadRequest("every form field needs a name")
                if name not in FORM_FIELDS:
                    raise BadRequest(f"unknown form field {name[:40]!r}; the fields are: "
                                     f"{', '.join(FORM_FIELDS)}")
                if name in seen:
                    raise BadRequest(f"the form field {name!r} appears more than once")
                seen.add(name)
                chunks: list[bytes] = []
                size = 0
                while chunk := await part.read_chunk(64 * 1024):
                    size += len(chunk)
                    total += len(chunk)
                    if total > limit:
                        raise _too_large(limit)
                    if name != "image" and size > MAX_TEXT_FIELD_BYTES:
                        raise BadRequest(f"the form field {name!r} is longer than "
                                         f"{MAX_TEXT_FIELD_BYTES} bytes")
                    chunks.append(chunk)
                data = b"".join(chunks)
                if name == "image":
                    image = data
                else:
                    try:
                        fields[name] = data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadRequest(f"the form field {name!r} is not UTF-8 text") from None
    except TimeoutError:
        raise ColorizeError(
            f"the upload took longer than {settings.body_timeout_s:g} s; send it faster "
            "or smaller", status=408) from None
    except ColorizeError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted input: any parse failure is a 400
        # aiohttp's multipart reader raises ValueError, AssertionError, LookupError,
        # HttpProcessingError ... for a missing/odd boundary, broken part headers, a bad
        # transfer encoding, or a body that ends early.
        log.info("malformed multipart body: %s: %s", type(exc).__name__, exc)
        raise BadRequest(MALFORMED) from None
    if image is None:
        raise BadRequest("the request has no 'image' file")
    return image, fields


@routes.post("/v1/colorize")
async def colorize(request: web.Request) -> web.Response:
    """multipart: `image` (file), `members` (comma list), `strength`, `fill`, `kind`,
    `seed` (0 <= int < 2**31: another plausible coloring; absent: the most likely)."""
    settings = request.app[SETTINGS_KEY]
    if settings.token and not _bearer_ok(request, settings.token):
        raise _unauthorized("a valid token is needed (Authorization: Bearer ...)")
    engine = request.app[ENGINE_KEY]
    data, fields = await read_form(request, settings)
    result = await engine.colorize(
        data,
        members=fields.get("members"),
        strength=fields.get("strength"),
        fill=fields.get("fill"),
        kind=fields.get("kind"),
        seed=fields.get("seed"),
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
         "generation": engine.generation, "broken": engine.broken}
    )


@routes.post("/v1/admin/reload")
async def reload(request: web.Request) -> web.Response:
    """Load the family again (after a promotion) and swap it in without dropping requests.

    Always needs the admin token; a worker without one has no admin endpoint.
    """
    token = request.app[SETTINGS_KEY].admin_token
    if not token:
        raise _unauthorized("the admin endpoint is off: this worker has no admin token "
                            "(COLORBOT_WORKER_ADMIN_TOKEN)")
    if not _bearer_ok(request, token):
        raise _unauthorized("a valid admin token is needed")
    engine = request.app[ENGINE_KEY]
    if engine.draining:
        raise ColorizeError("this worker is shutting down", status=503)
    try:
        loaded = await engine.reload()
    except Exception as exc:
        # The details are in the log (Engine.reload logs them); not in the answer.
        raise ColorizeError("reload failed, still serving the old family; see the worker's "
                            "log") from exc
    return web.json_response(
        {"reloaded": True, "generation": engine.generation, "members": loaded.members,
         "broken": loaded.broken}
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its loop answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Send traffic here: the family is loaded and the worker is not draining.

    `status` is "ok", or "degraded" (200 still: the other members serve) when some
    members could not be loaded; `broken` names them.
    """
    engine = request.app[ENGINE_KEY]
    if engine.ready:
        broken = engine.broken
        return web.json_response({"ready": True, "status": "degraded" if broken else "ok",
                                  "broken": broken, "generation": engine.generation})
    reason = "draining" if engine.draining else "loading"
    return web.json_response({"ready": False, "status": reason, "reason": reason}, status=503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE})

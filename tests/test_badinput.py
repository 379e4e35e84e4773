"""A bad-input corpus, run against the worker (HTTP, real pipeline) and the bot (fake
Discord, in-process worker): every kind gets its expected answer, nothing crashes.

Each case: (name, bytes, content type, expected). `expected` is "colored", or a phrase
of the kind refusal the user sees (the worker's 400 message; the bot's reply quotes it).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import numpy as np
from PIL import Image

from bot.errors import GENERIC_MESSAGE
from models.worker.app import create_app
from tests.bot.conftest import bot, database, fake, family_dir, settings, worker, world  # noqa: F401
from tests.bot.helpers import E2E
from tests.fakediscord import StoredFile
from tests.worker.test_app import worker_settings

COLORED = "colored"


def _page(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    rgb = Image.new("RGB", size, "white")
    pixels = np.asarray(rgb).copy()
    pixels[size[1] // 2, :] = 0
    pixels[:, size[0] // 3] = 0
    image = Image.fromarray(pixels, "RGB")
    return image if mode == "RGB" else image.convert(mode)


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` (the pixel data is tiny)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _exif_rotated_jpeg() -> bytes:
    image = _page()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    return _save(image, "JPEG", exif=exif)


def _animated_gif() -> bytes:
    frames = [_page("P"), _page("P").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _png_corrupt_idat() -> bytes:
    data = bytearray(_save(_page(), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start:start + 40] = b"\xde\xad\xbe\xef" * 10
    return bytes(data)


def _transparent_palette_png() -> bytes:
    image = _page("P")
    return _save(image, "PNG", transparency=0)


def _sixteen_bit_png() -> bytes:
    gray = (np.asarray(_page("L"), np.uint16) * 257).astype(np.uint16)
    return _save(Image.fromarray(gray), "PNG")  # mode I;16


def _float_tiff() -> bytes:
    gray = np.asarray(_page("L"), np.float32) / 255.0
    return _save(Image.fromarray(gray, "F"), "TIFF")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], bytes]
    expected: str  # COLORED, or a phrase of the refusal
    content_type: str = "image/png"


CASES = [
    Case("empty file", lambda: b"", "empty"),
    Case("random bytes", lambda: np.random.default_rng(1).bytes(5000), "can't read"),
    Case("text named .png", lambda: b"hello, this is not a picture\n" * 20, "can't read"),
    Case("html page", lambda: b"<!doctype html><html><body>hi</body></html>", "can't read"),
    Case("svg drawing", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    Case("svg with xml prolog", lambda: b'<?xml version="1.0"?>\n<svg width="9"></svg>', "SVG",
         "image/svg+xml"),
    Case("png signature only", lambda: b"\x89PNG\r\n\x1a\n", "can't read"),
    Case("truncated png", lambda: _save(_page(), "PNG")[:120], "incomplete"),
    Case("png with corrupt data", _png_corrupt_idat, "damaged"),
    Case("truncated jpeg", lambda: _save(_page(), "JPEG")[:300], "damaged"),
    Case("png bomb header", lambda: _png_with_size(60_000, 60_000), "bomb"),
    Case("too many pixels", lambda: _png_with_size(8_000, 6_000), "megapixels"),
    Case("one pixel", lambda: _save(Image.new("RGB", (1, 1)), "PNG"), "bigger page"),
    Case("sliver 4000x3", lambda: _save(Image.new("RGB", (4000, 3), "white"), "PNG"),
         "bigger page"),
    Case("zip archive", lambda: b"PK\x03\x04" + b"\x00" * 100, "can't read"),
    Case("pdf document", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "can't read"),
    Case("gzip of a png", lambda: gzip.compress(_save(_page(), "PNG")), "can't read"),
    Case("nul bytes", lambda: b"\x00" * 4096, "can't read"),
    Case("animated gif", _animated_gif, COLORED, "image/gif"),
    Case("16-bit gray png", _sixteen_bit_png, COLORED),
    Case("float tiff", _float_tiff, COLORED, "image/tiff"),
    Case("cmyk jpeg", lambda: _save(_page("CMYK"), "JPEG"), COLORED, "image/jpeg"),
    Case("transparent rgba png", lambda: _save(_page("RGBA").copy(), "PNG"), COLORED),
    Case("palette png with transparency", _transparent_palette_png, COLORED),
    Case("exif-rotated jpeg", _exif_rotated_jpeg, COLORED, "image/jpeg"),
    Case("1-bit png", lambda: _save(_page("1"), "PNG"), COLORED),
    Case("bmp", lambda: _save(_page(), "BMP"), COLORED, "image/bmp"),
    Case("webp", lambda: _save(_page(), "WEBP"), COLORED, "image/webp"),
    Case("very wide page", lambda: _save(_page(size=(2000, 20)), "PNG"), COLORED),
]


def test_the_corpus_has_at_least_25_kinds():
    assert len({c.name for c in CASES}) == len(CASES) >= 25


async def test_worker_answers_every_bad_input(aiohttp_client, family_dir):  # noqa: F811
    client = await aiohttp_client(create_app(worker_settings(family_dir)))
    wrong = []
    for case in CASES:
        data = aiohttp.FormData()
        data.add_field("image", case.make(), filename="page", content_type=case.content_type)
        response = await client.post("/v1/colorize", data=data)
        body = await response.json()
        if case.expected == COLORED:
            ok = response.status == 200 and len(body["colorings"]) == 4 and all(
                Image.open(io.BytesIO(base64.b64decode(c["png_base64"]))).size
                == (body["page"]["width"], body["page"]["height"]) for c in body["colorings"])
        else:
            ok = response.status == 400 and case.expected.lower() in body["error"].lower()
        if not ok:
            wrong.append((case.name, response.status, body.get("error")))
    assert wrong == []


@E2E
async def test_bot_answers_every_bad_input(world, bot):  # noqa: F811
    discord = world.fake
    posted = []
    for index, case in enumerate(CASES):
        file = StoredFile(f"case{index}.png", case.make(), case.content_type)
        posted.append((case, await discord.post_message(world.coloring, world.alice,
                                                        files=[file])))
    wrong = []
    for case, message in posted:
        reply = await world.reply_to(message, timeout=120)
        if GENERIC_MESSAGE in reply.content or "Traceback" in reply.content:
            wrong.append((case.name, "crash", reply.content))
        elif case.expected == COLORED:
            if len(reply.files) != 5:
                wrong.append((case.name, "not colored", reply.content))
        elif reply.files or case.expected.lower() not in reply.content.lower():
            wrong.append((case.name, "unexpected reply", reply.content))
    await asyncio.sleep(0.5)
    assert all(len(discord.replies_to(m.id)) == 1 for _, m in posted)
    assert wrong == []

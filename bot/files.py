"""Fitting images into one Discord message: at most 10 files, under the upload limit.

Discord refuses a message with more than 10 attachments or whose files exceed the
guild's upload limit (`guild.filesize_limit`). `fit_images` keeps PNGs when they fit;
otherwise it re-encodes the biggest as JPEG and, if that is not enough, downscales
them all, until the total fits with some room for the multipart envelope.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

MAX_FILES_PER_MESSAGE = 10
# Room left for the multipart envelope and the JSON payload.
ENVELOPE_BYTES = 64 * 1024
SMALLEST_SIDE = 64


@dataclass
class ImageFile:
    filename: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def _stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0] if "." in filename else filename


def _encode(image: Image.Image, fmt: str, quality: int = 88) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=quality, optimize=True)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()


def png_file(filename: str, image: Image.Image) -> ImageFile:
    return ImageFile(f"{_stem(filename)}.png", _encode(image, "PNG"))


def fit_images(
    files: list[ImageFile], limit_bytes: int, max_files: int = MAX_FILES_PER_MESSAGE
) -> list[ImageFile]:
    """The first `max_files` files, re-encoded/downscaled so their total is under
    `limit_bytes` minus an envelope. Order and stems of the names are kept."""
    files = list(files[:max_files])
    budget = max(limit_bytes - ENVELOPE_BYTES, limit_bytes // 2)
    if sum(f.size for f in files) <= budget:
        return files
    images = [Image.open(io.BytesIO(f.data)) for f in files]
    for image in images:
        image.load()

    # 1. JPEG, biggest first, until it fits.
    out = list(files)
    for i in sorted(range(len(out)), key=lambda k: -out[k].size):
        jpeg = _encode(images[i], "JPEG")
        if jpeg and len(jpeg) < out[i].size:
            out[i] = ImageFile(f"{_stem(out[i].filename)}.jpg", jpeg)
        if sum(f.size for f in out) <= budget:
            return out

    # 2. Downscale everything by the same factor until it fits.
    scale = 1.0
    while sum(f.size for f in out) > budget:
        scale *= max(0.5, min(0.9, math.sqrt(budget / sum(f.size for f in out)) * 0.95))
        shrunk = []
        for image, file in zip(images, out, strict=True):
            w, h = image.size
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            if min(size) < SMALLEST_SIDE:
                raise ValueError(f"cannot fit {len(out)} images in {limit_bytes} bytes")
            small = image.resize(size, Image.Resampling.LANCZOS)
            shrunk.append(ImageFile(f"{_stem(file.filename)}.jpg", _encode(small, "JPEG")))
        out = shrunk
    return out

"""Thumbnails of stored pages and colorings, small enough for a phone.

Made with Pillow on first request (in a thread) and kept in a small in-memory LRU by
content hash. The cache is only ever reached after the database said the gallery
shows the picture right now, so a forgotten page is never served from it.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict

from PIL import Image

THUMB_SIZE = 360  # long side, px: two columns on a phone at 2x, crisp enough
FULL_SIZE = 1600  # the "open" view: large pages are scaled down to this long side


def thumbnail_webp(data: bytes, size: int = THUMB_SIZE, quality: int = 78) -> bytes:
    """A WebP of the picture scaled to `size` on its long side (never enlarged)."""
    with Image.open(io.BytesIO(data)) as opened:
        rgba = opened.mode in ("RGBA", "LA", "P")
        img = opened.convert("RGBA") if rgba else opened.convert("RGB")
        if img.mode == "RGBA":  # pages are drawn on white paper
            paper = Image.new("RGB", img.size, "white")
            paper.paste(img, mask=img.getchannel("A"))
            img = paper
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        img.save(out, format="WEBP", quality=quality, method=4)
        return out.getvalue()


class ThumbnailCache:
    """(sha256, size) -> WebP bytes, least recently used out past `max_bytes`."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)

"""Reading Qt resource bundles (`.rcc`, as `rcc --binary` writes them).

GCompris ships its pictures inside such bundles. The format (Qt's `rcc` docs and
`qresource.cpp`): a header `qres`, version, and the offsets of three blocks:

- the tree: fixed-size nodes (14 bytes, 22 from version 2 on with a modification
  time): name offset, flags, then either (child count, first child) for a directory
  or (country, language, data offset) for a file;
- the names: length (u16), hash (u32), UTF-16BE characters;
- the data: length (u32) and the bytes; flag 1 means zlib (`qCompress`: a 4-byte
  big-endian uncompressed size, then a zlib stream), flag 4 zstd.

All integers are big-endian.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_COMPRESSED = 0x01
_DIRECTORY = 0x02
_ZSTD = 0x04


class RccError(Exception):
    """Not a Qt resource bundle, or a damaged one."""


def read_rcc(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Every file in the bundle as `(path inside the bundle, bytes)`."""
    blob = Path(path).read_bytes()
    if blob[:4] != b"qres" or len(blob) < 20:
        raise RccError(f"{path}: not a Qt resource bundle")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccError(f"{path}: unknown rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", blob, at)
        name = "" if index == 0 else name_at(name_offset)
        here = f"{prefix}/{name}" if name else prefix
        if flags & _DIRECTORY:
            count, first = struct.unpack_from(">II", blob, at + 6)
            for child in range(first, first + count):
                yield from walk(child, here)
            return
        (offset,) = struct.unpack_from(">I", blob, at + 10)
        (size,) = struct.unpack_from(">I", blob, data + offset)
        payload = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & _COMPRESSED:
            payload = zlib.decompress(payload[4:])
        elif flags & _ZSTD:
            raise RccError(f"{path}: {here} is zstd-compressed, which is not supported")
        yield here.lstrip("/"), payload

    try:
        yield from walk(0, "")
    except (struct.error, zlib.error, UnicodeDecodeError) as exc:
        raise RccError(f"{path}: damaged bundle ({exc})") from exc

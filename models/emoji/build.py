"""Render the voting emoji shipped in this folder from the Noto emoji set's SVGs.

    python models/emoji/build.py [path/to/iconify-json-noto-X.tgz]

Reads the npm package `@iconify-json/noto` (Noto Emoji as Iconify JSON, Apache-2.0;
`npm pack @iconify-json/noto` fetches it), renders each emoji below with resvg to a
72 px PNG named by its code points (`1f600.png`) and writes nothing else. The PNGs are
what `models.sheet` draws under each member's tile; LICENSE says where they come from.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import resvg_py
from PIL import Image

HERE = Path(__file__).resolve().parent
SIZE = 72
# The default family's voting emoji (NOTES.md): grinning face, rainbow, paperclip,
# artist palette; and the cartoon member's teddy bear.
EMOJI = ("😀", "🌈", "📎", "🎨", "🧸")
DEFAULT_TARBALL = Path("/work/cache/npm/iconify-json-noto-1.2.9.tgz")


def file_name(emoji: str) -> str:
    """`1f600.png` for 😀; joined code points for a sequence (`1f469-200d-1f3a8.png`)."""
    return "-".join(f"{ord(ch):x}" for ch in emoji if ch != "\ufe0f") + ".png"


def _load_json(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None, f"{name} is not a regular file"
    return json.load(member)


def main(argv: list[str]) -> int:
    tarball = Path(argv[0]) if argv else DEFAULT_TARBALL
    with tarfile.open(tarball) as tar:
        icons = _load_json(tar, "package/icons.json")
        chars = _load_json(tar, "package/chars.json")
    for emoji in EMOJI:
        key = file_name(emoji).removesuffix(".png")
        icon = icons["icons"][chars[key]]
        width, height = icon.get("width", icons["width"]), icon.get("height", icons["height"])
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">'
               f'{icon["body"]}</svg>')
        png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=SIZE, height=SIZE))
        image = Image.open(io.BytesIO(png)).convert("RGBA")
        image.save(HERE / file_name(emoji), optimize=True)
        print(f"{emoji} {chars[key]} -> {file_name(emoji)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

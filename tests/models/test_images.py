"""load_page: every kind of input a user might post, good and bad."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from models.images import PageError, load_page, page_lightness


def _png(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (a decompression bomb's trick)."""
    raw = bytearray(_png(Image.new("L", (16, 16), 255)))
    assert raw[12:16] == b"IHDR"
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


# ---- good pages -------------------------------------------------------------------
def test_rgb_png_from_bytes_and_path(tmp_path):
    im = Image.new("RGB", (30, 20), (10, 200, 30))
    data = _png(im)
    (tmp_path / "p.png").write_bytes(data)
    for source in (data, tmp_path / "p.png", str(tmp_path / "p.png")):
        out = load_page(source)
        assert out.mode == "RGB" and out.size == (30, 20)
        assert out.getpixel((3, 3)) == (10, 200, 30)


def test_grayscale_becomes_rgb():
    out = load_page(_png(Image.new("L", (20, 20), 77)))
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (77, 77, 77)


def test_transparent_rgba_lands_on_white():
    im = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    im.paste((0, 0, 0, 255), (0, 0, 10, 20))
    out = load_page(_png(im))
    assert out.getpixel((2, 2)) == (0, 0, 0)
    assert out.getpixel((15, 2)) == (255, 255, 255)  # transparent red -> white paper


def test_transparent_la_lands_on_white():
    im = Image.new("LA", (20, 20), (0, 0))
    out = load_page(_png(im))
    assert out.getpixel((5, 5)) == (255, 255, 255)


def test_palette_with_transparency():
    im = Image.new("P", (20, 20), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.paste(0, (0, 0, 10, 20))
    out = load_page(_png(im, transparency=1))
    assert out.getpixel((2, 2)) == (0, 0, 0)
    assert out.getpixel((15, 2)) == (255, 255, 255)  # palette entry 1 is transparent


def test_palette_opaque():
    im = Image.new("P", (20, 20), 1)
    im.putpalette([0, 0, 0, 0, 128, 255] + [0] * 762)
    assert load_page(_png(im)).getpixel((5, 5)) == (0, 128, 255)


def test_16bit_grayscale_is_scaled_not_clipped():
    arr = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    im = Image.fromarray(arr)
    assert im.mode.startswith("I;16")
    data = _png(im)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = np.asarray(load_page(data))[..., 0].astype(int)
    expected = np.rint(arr / 257.0).astype(int)
    assert np.abs(out - expected).max() <= 1  # Pillow's convert would clip at 255
    assert out[16, 16] not in (0, 255)


def test_cmyk_jpeg():
    im = Image.new("CMYK", (32, 32), (255, 0, 0, 0))  # pure cyan ink
    out = load_page(_bytes(im, "JPEG", quality=95))
    r, g, b = out.getpixel((16, 16))
    assert r < 40 and g > 200 and b > 200


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    r, g, b = load_page(buf.getvalue()).getpixel((5, 5))
    assert r > 200 and b < 50


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (40, 20), "white")
    im.paste((0, 0, 0), (0, 0, 10, 20))  # black band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_page(_bytes(im, "JPEG", exif=exif, quality=95))
    assert out.size == (20, 40)
    assert sum(out.getpixel((10, 3))) < 100  # the band is now on top
    assert sum(out.getpixel((10, 36))) > 600


def test_page_lightness_matches_colorspace():
    import torch

    from models.colorspace import rgb_to_lab

    rgb = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    rgb[:8, :8] = rgb[:8, :8, :1]  # some gray pixels too
    ours = page_lightness(Image.fromarray(rgb))
    ref = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).double() / 255)[0].numpy()
    assert np.abs(ours - ref).max() < 0.05
    gray = page_lightness(Image.new("RGB", (4, 4), (128, 128, 128)))
    assert abs(float(gray[0, 0]) - 53.585) < 0.05


# ---- bad pages --------------------------------------------------------------------
def _refused(data, match: str, **kw) -> str:
    with pytest.raises(PageError, match=match) as info:
        load_page(data, **kw)
    message = str(info.value)
    assert "Traceback" not in message and len(message) < 300
    return message


def test_non_image_is_refused():
    _refused(b"hello, this is not a picture\n" * 10, "can't read that file as an image")


def test_empty_file_is_refused():
    _refused(b"", "empty")


def test_missing_file_is_refused(tmp_path):
    _refused(tmp_path / "nope.png", "can't find")


def test_corrupt_image_is_refused():
    rng = np.random.default_rng(0)
    data = bytearray(_png(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))))
    mid = len(data) // 2
    data[mid : mid + 200] = bytes(200)  # zero out part of the compressed pixels
    _refused(bytes(data), "damaged|incomplete")


def test_truncated_image_is_refused():
    rng = np.random.default_rng(1)
    data = _bytes(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    _refused(data[: len(data) // 2], "incomplete")


def test_decompression_bomb_is_refused():
    # 100k x 100k claimed by a ~100-byte file: Pillow's own bomb error, turned kind.
    _refused(_png_with_size(100_000, 100_000), "enormous|decompression bomb")


def test_bomb_between_pillow_warning_and_error_is_refused():
    # 10k x 10k = 100 MP: past Pillow's warning threshold, below its error.
    _refused(_png_with_size(10_000, 10_000), "megapixels|enormous")


def test_oversized_image_is_refused_before_decoding():
    _refused(_png_with_size(7000, 6000), "7000 x 6000 pixels")
    _refused(_png(Image.new("L", (100, 100))), "megapixels", max_pixels=5000)


def test_too_many_bytes_is_refused(tmp_path):
    data = _png(Image.new("L", (100, 100)))
    _refused(data, "MB", max_bytes=len(data) - 1)
    path = tmp_path / "big.png"
    path.write_bytes(data)
    _refused(path, "MB", max_bytes=len(data) - 1)


def test_tiny_image_is_refused():
    _refused(_png(Image.new("L", (3, 3))), "bigger page")


@pytest.mark.parametrize("svg", [
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
    b'\xef\xbb\xbf<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>',
])
def test_svg_is_refused_with_a_hint(svg):
    message = _refused(svg, "SVG")
    assert "PNG" in message

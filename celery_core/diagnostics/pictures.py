"""Generated pictures: a distinct picture for every seed, encoded in memory, and a PNG bomb.

One generator for everything that needs pictures without the network:

- `pixcrawler self-test` serves them from its local site (`selftest_site`);
- the tests serve them from `tests/image_server.py` and check them directly;
- the benchmark site (`bench/site.py`) writes a thousand of them, with traps, to disk.

They must agree on what "distinct" means: a crawl of different seeds keeps every picture (their
perceptual hashes are far apart), while a resized or re-encoded copy of one is caught as a
duplicate. The tests and the benchmark's expected counts rely on that, so a change to how a
picture is drawn changes what they measure.

It lives in `celery_core` because the self-test ships with the app. Standard library and Pillow
only: `celery_core` never imports Qt, and nothing here may pull Celery into a process that only
crawls.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Any

from PIL import Image, ImageDraw

__all__ = ["PICTURE_SIZE", "SHAPES", "encode", "make_picture", "png_bomb"]

PICTURE_SIZE = (480, 360)
# The tests' many seeds are known to give far-apart hashes with ten shapes; another default
# would redraw every test picture. (The benchmark site passes the twelve it was built with.)
SHAPES = 10


def make_picture(
    seed: int,
    size: tuple[int, int] = PICTURE_SIZE,
    *,
    shapes: int = SHAPES,
    gradient: bool = False,
    noise: bool = False,
) -> Image.Image:
    """An RGB picture unlike any other seed's: `shapes` random coloured ellipses and rectangles
    on a background of a random colour.

    `gradient` tints a grey ramp with that colour instead of filling it flat, and `noise` blends
    in photo-like grain: both make the picture cost what a photo costs to encode (the benchmark
    wants that), neither makes it more distinct. Without `noise` a seed always draws the same
    pixels, so a test can encode a picture twice and compare the bytes.
    """
    # Every random choice comes from this one generator, in this order: reordering the draws
    # would change every picture, and with them the hashes the tests and the benchmark rely on.
    rnd = random.Random(seed)
    width, height = size
    background = _colour(rnd)
    if gradient:
        # The ramp is the same for every seed; the 60 % tint keeps the seed's colour dominant.
        ramp = Image.linear_gradient("L").resize(size).convert("RGB")
        image = Image.blend(ramp, Image.new("RGB", size, background), 0.6)
    else:
        image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        x0, y0 = rnd.randrange(width), rnd.randrange(height)
        # From a tenth to half of each side: big enough to show in the hash's 9x8 grid, small
        # enough that several stay visible.
        x1 = x0 + rnd.randrange(width // 10 + 1, width // 2 + 2)
        y1 = y0 + rnd.randrange(height // 10 + 1, height // 2 + 2)
        colour = _colour(rnd)
        shape = draw.ellipse if rnd.random() < 0.5 else draw.rectangle
        shape([x0, y0, x1, y1], fill=colour)
    if noise:
        # Pillow draws the grain from the C library's rand(), not from `seed`: it varies with
        # the process and the call order. Light enough (18 %) that the shapes still decide the
        # hash, heavy enough that JPEG and WebP files get photo-sized.
        grain = Image.effect_noise(size, 48).convert("RGB")
        image = Image.blend(image, grain, 0.18)
    return image


def _colour(rnd: random.Random) -> tuple[int, int, int]:
    return rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)


def encode(image: Image.Image, fmt: str = "JPEG", **options: Any) -> bytes:
    """The bytes of `image` saved as `fmt` (a Pillow format name); `options` go to `save`."""
    # JPEG cannot hold alpha or a palette: convert, so any picture a test builds can be a JPEG.
    if fmt == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG of under a hundred bytes whose header declares `width` x `height` pixels.

    Written by hand because Pillow would have to allocate every declared pixel to save it. The
    default, 900 megapixels, is past Pillow's own bomb limit and the crawler's `max_pixels`, so
    a correct image check refuses it from the header without decoding.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, not interlaced
    # Some compressed zeros, far fewer than declared: a decoder that trusts the header and
    # starts decoding finds a short file, never the gigabytes it would have allocated.
    pixels = zlib.compress(bytes(4096), 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )

"""Faster PNG decoding where Pillow runs on the classic zlib.

Pillow's wheels are built for zlib-ng but load the system's `libz.so.1`, which on many Linux
systems is the classic zlib (1.2.13 on Debian 12). Its inflate copies short-distance matches
one byte at a time, and graphics PNGs are mostly such matches: a 1280x960 screenshot-like PNG
takes about 7 ms to inflate, most of Pillow's 9 ms decode. zlib-ng inflates the same stream in
well under a millisecond. So before Pillow decodes a PNG, its image data is inflated here by
zlib-ng and compressed again at zlib-ng's fastest level, whose output the classic inflate
reads several times faster; Pillow then unfilters the rows as usual. The pixels are identical
(deflate is lossless), and it roughly halves the time to check such a PNG.

Anything unusual (an animated PNG, a stream that does not inflate to the size the header
announces, a chunk cut short, image data above `MAX_RAW_BYTES`) is left to Pillow as it came,
so its errors and limits stay the ones reported. Where the loaded zlib is already zlib-ng
(Fedora's zlib-ng-compat, for one), nothing is done.
"""

from __future__ import annotations

import struct
from functools import cache

from PIL import features
from zlib_ng import zlib_ng

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Above this the inflated rows (plus their re-compressed copy) would sit in memory beside
# Pillow's image; large images are rare enough to decode the plain way.
MAX_RAW_BYTES = 32 * 1024 * 1024
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# (x start, y start, x step, y step) of the seven Adam7 passes
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


@cache
def enabled() -> bool:
    """Whether re-compressing pays: Pillow's zlib is not zlib-ng already."""
    return "zlib-ng" not in (features.version("zlib") or "")


def raw_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int | None:
    """Bytes of filtered rows the image data must inflate to (each row has a filter byte)."""
    channels = _CHANNELS.get(colour)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * channels * depth + 7) // 8)

    if not interlaced:
        return rows(width, height)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        total += rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
    return total


def reflate(data: bytes, max_raw: int = MAX_RAW_BYTES) -> bytes | None:
    """`data` with its image data re-compressed for a fast inflate, or None to use it as is."""
    if not data.startswith(SIGNATURE):
        return None
    view = memoryview(data)
    before: list[memoryview] = []
    after: list[memoryview] = []
    idat: list[memoryview] = []
    position = len(SIGNATURE)
    expected: int | None = None
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return None  # cut short: Pillow names the problem
        if kind == b"IHDR" and length == 13:
            width, height, depth, colour, _, _, interlace = struct.unpack_from(
                ">IIBBBBB", data, position + 8
            )
            expected = raw_size(width, height, depth, colour, interlace == 1)
        elif kind == b"acTL":
            return None  # animated: frames live in fdAT chunks as well
        if kind == b"IDAT":
            if after:
                return None  # image data must be consecutive
            idat.append(view[position + 8 : position + 8 + length])
        else:
            (after if idat else before).append(view[position:end])
        position = end
        if kind == b"IEND":
            break
    if not idat or expected is None or expected > max_raw:
        return None
    inflater = zlib_ng.decompressobj()
    try:
        rows = inflater.decompress(b"".join(idat), expected + 1)
    except Exception:  # zlib_ng.error: a damaged stream, which Pillow then reports
        return None
    if len(rows) != expected or not inflater.eof:
        return None
    packed = zlib_ng.compress(rows, 1)
    del rows  # at most two copies at once: the rows and `packed`, then `packed` and the result
    chunk = [struct.pack(">I", len(packed)), b"IDAT", packed]
    chunk.append(struct.pack(">I", zlib_ng.crc32(packed, zlib_ng.crc32(b"IDAT"))))
    return b"".join([SIGNATURE, *before, *chunk, *after, view[position:]])

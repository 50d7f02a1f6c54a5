"""How many bytes checking an image will allocate, from its header, before any pixel is decoded.

The pixel cap bounds width x height; what a decode costs also depends on the format, the mode
and the decode path the check takes (`check.py`), which this module follows step by step:

- Pillow keeps 1 byte per pixel for modes 1, L and P, 2 for 16-bit greyscale, and 4 for every
  other mode, RGB included (`pixel_bytes`).
- Shrinking to the thumbnail makes full-size copies first for some modes (`_to_rgb`): a
  palette image becomes RGB or RGBA, 16-bit greyscale goes through two float images, and
  `thumbnail()` premultiplies RGBA and LA into a second full-size image (`conversions`).
- JPEG is decoded in draft mode, scaled down by up to 8, so its pixels count at the draft size;
  but a progressive file (or one whose first scan lacks a component) makes libjpeg keep every
  DCT coefficient of the whole image, 2 bytes per sample at full size, whatever the scale.
- PNG: `png_reflate` holds the inflated rows and their re-compressed copy (at worst the size
  of the rows each) before Pillow decodes the copy; a 16-bit PNG decodes to 8 bits per sample.
  An animated PNG may keep one more full-size frame.
- GIF: the first frame only, at the logical screen size (Pillow grows it to cover the frame),
  plus a full-size fill for its disposal, then the conversions of a palette image.
- WebP through libwebp (`webp_thumbnail`): a lossless image is decoded whole into 32-bit ARGB
  before it is scaled; a lossy one keeps a few rows of macroblocks, plus its alpha plane at
  full size, itself decoded through a 32-bit buffer unless its values are few (5 bytes per
  pixel). Through Pillow (animated, or carrying EXIF): libwebp's animation decoder holds two
  RGBA canvases, then the frame is copied into bytes and into the image (16 bytes per pixel),
  plus what libwebp needs for the frame, plus the premultiplied copy of an RGBA image.
- BMP: RLE data is unpacked by a Python decoder into a bytearray, then copied once more.
- TIFF: libtiff reads a strip or tile at a time, and a strip may be the whole image.

Every estimate adds `FIXED` (thumbnail, reduce steps, the thumbnail's JPEG), and the size of
the file where a copy of it is made (png_reflate joins the image data; Pillow reads a WebP
or hands a TIFF to libtiff whole). They are upper bounds, checked against measured peaks
(docs/benchmarks.md): an image admitted within a budget cannot allocate more than it was
admitted for.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from celery_core.crawler.images import png_reflate

MIB = 1024 * 1024
FIXED = 2 * MIB
_SMALL_MODES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_WEBP_ROW_BYTES = 256  # libwebp's macroblock row caches and rescaler, per column of the image


@dataclass(frozen=True)
class DecodeCost:
    """Bytes one check will allocate: `plain` without png_reflate, `reflated` with it (None
    when reflate does not apply)."""

    plain: int
    reflated: int | None = None


def pixel_bytes(mode: str) -> int:
    """Bytes per pixel of a Pillow image of `mode` in memory."""
    return _SMALL_MODES.get(mode, 4)


def conversions(mode: str, has_transparency: bool, pixels: int) -> int:
    """Full-size images `_to_rgb` makes from an image of `mode` before it shrinks."""
    if mode == "P":
        return pixels * (8 if has_transparency else 4)  # RGBA and its premultiplied copy
    if mode == "PA":
        return pixels * 8
    if mode == "1":
        return pixels  # to L
    if mode.startswith(("I", "F")):
        return pixels * 8  # two float images on the way to L
    if mode in ("LA", "RGBA"):
        return pixels * 4  # thumbnail() premultiplies into a second image
    if mode in ("L", "RGB", "CMYK"):
        return 0  # reduced as they are
    return pixels * 4  # converted to RGB first


def pillow_cost(image: Any, fmt: str, data: bytes, width: int, height: int) -> DecodeCost:
    """The cost of the Pillow path for `image`, opened (header read) but not loaded; for a
    JPEG, after `draft()` was requested, so that `image.size` is the draft size.
    `width` x `height` is the full size from the header."""
    pixels = width * height
    mode = image.mode
    transparency = "transparency" in image.info
    base = FIXED
    if fmt == "JPEG":
        draft_w, draft_h = image.size
        cost = draft_w * draft_h * pixel_bytes(mode) + conversions(mode, False, draft_w * draft_h)
        if jpeg_buffers_coefficients(image, data):
            cost += jpeg_coefficient_bytes(width, height, getattr(image, "layer", None) or [])
        # Rows of samples, upsampling and colour conversion: a few rows at full width.
        return DecodeCost(base + cost + width * 16 * 4 * 2)
    decoded = pixels * pixel_bytes(mode)
    extra = conversions(mode, transparency, pixels)
    if fmt == "GIF":
        return DecodeCost(base + decoded + pixels + extra)  # + the disposal fill
    if fmt == "BMP":
        rle = image.info.get("compression") in (1, 2)
        return DecodeCost(base + decoded + extra + (3 * pixels if rle else 0))
    if fmt == "TIFF":
        strips = pixels * max(_tiff_sample_bytes(image), 4)
        return DecodeCost(base + len(data) + decoded + extra + strips)
    if fmt == "WEBP":
        lossless, alpha = webp_kind(data)
        frame = max(4 if lossless else 0, 5 if alpha else 0)
        return DecodeCost(base + len(data) + pixels * (16 + frame + (4 if alpha else 0)))
    if fmt == "PNG":
        if getattr(image, "n_frames", 1) > 1:
            decoded *= 2  # the previous frame, kept for blending
        plain = base + decoded + extra
        raw = png_raw_bytes(data)
        if raw is None or raw > png_reflate.MAX_RAW_BYTES:
            return DecodeCost(plain)
        # Reflating joins the image data, holds the rows and their copy, then the copy stays
        # while Pillow decodes.
        return DecodeCost(plain, base + len(data) + max(2 * raw, raw + decoded + extra))
    return DecodeCost(base + decoded + extra)


def worst_case(data: bytes, width: int, height: int) -> int:
    """An estimate above every path's: for a header the estimate cannot read."""
    return FIXED + len(data) + width * height * 25


def webp_cost(data: bytes, width: int, height: int) -> DecodeCost:
    """The cost of decoding a WebP straight to thumbnail size with libwebp."""
    lossless, alpha = webp_kind(data)
    per_pixel = 4 if lossless else (5 if alpha else 0)  # ARGB; or alpha plane + its decoder
    return DecodeCost(FIXED + width * height * per_pixel + width * _WEBP_ROW_BYTES)


def jpeg_buffers_coefficients(image: Any, data: bytes) -> bool:
    """Whether libjpeg keeps the whole image's coefficients: progressive (and hierarchical or
    lossless) files, and sequential ones coded in several scans (the first scan lacks a
    component), as libjpeg decides it (`has_multiple_scans`)."""
    if image.info.get("progressive") or image.info.get("progression"):
        return True
    components = _first_scan_components(data)
    return components is None or components < max(1, getattr(image, "layers", 1) or 1)


def jpeg_coefficient_bytes(width: int, height: int, layer: list[Any]) -> int:
    """Bytes of libjpeg's whole-image coefficient arrays: 64 coefficients of 2 bytes for every
    8x8 block of every component, padded to whole MCUs. `layer` is Pillow's list of
    (id, horizontal sampling, vertical sampling, table) per component; without it, four
    components at full resolution are assumed."""
    sampling = [(max(1, int(h)), max(1, int(v))) for _, h, v, _ in layer] or [(1, 1)] * 4
    h_max = max(h for h, _ in sampling)
    v_max = max(v for _, v in sampling)
    mcus_x = math.ceil(width / (8 * h_max))
    mcus_y = math.ceil(height / (8 * v_max))
    blocks = sum(mcus_x * h * mcus_y * v for h, v in sampling)
    return blocks * 64 * 2


def _first_scan_components(data: bytes) -> int | None:
    """How many components the first scan (SOS) of a JPEG codes, walking the marker segments;
    None when the header cannot be walked."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker == 0xDA:
            return data[position + 4] if position + 4 < len(data) else None
        position += 2 + length
    return None


def png_raw_bytes(data: bytes) -> int | None:
    """Bytes of filtered rows a PNG's image data inflates to, from its IHDR chunk."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    return png_reflate.raw_size(width, height, depth, colour, interlace == 1)


def webp_kind(data: bytes) -> tuple[bool, bool]:
    """(lossless, has alpha) of a WebP, from its chunks; unknown counts as lossless."""
    if data[12:16] == b"VP8 ":
        return False, False
    if data[12:16] != b"VP8X":
        return True, True  # VP8L, or something libwebp will refuse
    alpha = bool(len(data) > 20 and data[20] & 0x10)
    position = 12
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        if kind == b"VP8 ":
            return False, alpha
        if kind == b"VP8L":
            return True, alpha
        (size,) = struct.unpack_from("<I", data, position + 4)
        position += 8 + size + (size & 1)
    return True, alpha


def _tiff_sample_bytes(image: Any) -> int:
    """Bytes per pixel of a TIFF's stored samples (a strip of them may be the whole image)."""
    tags = getattr(image, "tag_v2", {})
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    samples = int(tags.get(277, len(bits)) or 1)
    return max(1, samples * math.ceil(max(int(b) for b in bits) / 8))

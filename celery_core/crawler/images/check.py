"""Checking a downloaded image: one decode feeds the checks, the perceptual hash and the thumbnail.

Order matters for safety and speed: the format comes from the magic bytes, the size from the
header, and width x height is refused above the limit before any pixel is decoded. JPEGs are
decoded in draft mode (the DCT scaled down by up to 8), which is several times faster and gives
the same hash bits; WebPs are scaled by libwebp as it decodes (see `webp_thumbnail`); PNGs'
image data is re-compressed for a faster inflate where Pillow's zlib is slow (`png_reflate`).
`load()` is a real decode: it catches truncated files that `verify()` passes.

Memory: with a `DecodeBudget`, the bytes the decode will allocate are estimated from the
header (`decode_cost`) and taken from the budget before any pixel is decoded; the check waits
while they do not fit, and an image needing more than the whole budget is refused
(`too_large_to_decode`). A PNG is re-compressed only when the budget can hold that too.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING

from PIL import (  # the formats EXTENSIONS names, registered now (not all of Pillow's)
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from celery_core.crawler.images import decode_cost, png_reflate, webp_thumbnail
from celery_core.crawler.images.decode_budget import DecodeBudget
from celery_core.crawler.images.webp_thumbnail import WebPError, WebPThumbnailer

if TYPE_CHECKING:
    from celery_core.settings.crawler_settings import CrawlerSettings

EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
}
THUMBNAIL_MAX_BYTES = 10_000
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


class InvalidImage(Exception):
    """The bytes are not an image worth keeping. `reason` is one of: not_an_image, truncated,
    too_many_pixels, too_large_to_decode, too_small, format_not_allowed, decode_error."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[InvalidImage], tuple[str, str]]:
        return (InvalidImage, (self.reason, self.detail))


@dataclass(frozen=True)
class ImageRules:
    """What an image must satisfy; plain data so it can travel to a worker thread or process."""

    max_pixels: int = 40_000_000
    allowed_formats: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP"})
    min_width: int = 0
    min_height: int = 0
    thumbnail_size: int = 160

    @classmethod
    def from_settings(
        cls, settings: CrawlerSettings, min_width: int = 0, min_height: int = 0
    ) -> ImageRules:
        return cls(
            max_pixels=settings.max_pixels,
            allowed_formats=frozenset(settings.allowed_formats),
            min_width=min_width,
            min_height=min_height,
            thumbnail_size=settings.thumbnail_size,
        )


@dataclass(frozen=True)
class CheckedImage:
    """A valid image: its real format, size, content hash, perceptual hash and a thumbnail."""

    format: str
    ext: str
    width: int
    height: int
    sha256: str
    phash: int  # 64-bit difference hash (dHash)
    thumbnail: bytes  # JPEG
    thumb_width: int
    thumb_height: int

    @property
    def phash_hex(self) -> str:
        return f"{self.phash:016x}"


def sniff_format(data: bytes) -> str | None:
    """The image format named by the first bytes, or None. Needs about 32 bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    # "BM" alone would match text; the DIB header size field must hold a known value.
    if data.startswith(b"BM") and len(data) >= 18:
        (dib_size,) = struct.unpack_from("<I", data, 14)
        if dib_size in _BMP_HEADER_SIZES:
            return "BMP"
    return None


def check_image(data: bytes, rules: ImageRules, budget: DecodeBudget | None = None) -> CheckedImage:
    """Validate `data` and derive everything the dataset needs, or raise InvalidImage.

    `budget`: the process's decode memory (see the module's docstring); None decodes without
    asking (files the crawler wrote itself, tests)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidImage("not_an_image")
    if fmt not in rules.allowed_formats:
        raise InvalidImage("format_not_allowed", fmt)
    if fmt == "WEBP" and _webp_cut(data):
        # libwebp only says "bitstream error"; the RIFF sizes tell the real story.
        raise InvalidImage("truncated", "shorter than its RIFF header says")
    webp = webp_thumbnail.decoder() if fmt == "WEBP" else None
    size = _webp_size(webp, data) if webp is not None else None
    if webp is not None and size is not None:
        width, height = size
        _check_dimensions(width, height, rules)
        with _admitted(budget, decode_cost.webp_cost(data, width, height).plain):
            thumb = _webp_thumbnail(webp, data, rules.thumbnail_size)
    else:
        try:
            image = Image.open(BytesIO(data), formats=[fmt])
        except Image.DecompressionBombError as exc:  # not an OSError: must be named
            raise InvalidImage("too_many_pixels", str(exc)) from None
        except Exception as exc:
            raise InvalidImage(_decode_reason(exc), str(exc)) from None
        with image:  # leaving closes the file only; a thumbnail made in place stays usable
            width, height = image.size
            _check_dimensions(width, height, rules)
            if fmt == "JPEG":
                _request_draft(image, rules.thumbnail_size)  # the estimate counts the draft
            reflate = fmt == "PNG" and png_reflate.enabled()
            need = 0
            if budget is not None:
                cost = _pillow_cost(image, fmt, data, width, height)
                reflate = reflate and cost.reflated is not None and budget.fits(cost.reflated)
                need = cost.reflated if reflate and cost.reflated is not None else cost.plain
            with _admitted(budget, need):
                thumb = _pillow_thumbnail(image, fmt, data, rules.thumbnail_size, reflate)
    phash = dhash(thumb)
    jpeg = _encode_thumbnail(thumb)
    return CheckedImage(
        format=fmt,
        ext=EXTENSIONS[fmt],
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        phash=phash,
        thumbnail=jpeg,
        thumb_width=thumb.width,
        thumb_height=thumb.height,
    )


def _webp_cut(data: bytes) -> bool:
    """Whether the file or one of its chunks ends before the size its header gives."""
    if len(data) < 8 + struct.unpack_from("<I", data, 4)[0]:
        return True
    position = 12
    while position + 8 <= len(data):
        (size,) = struct.unpack_from("<I", data, position + 4)
        position += 8 + size + (size & 1)
        if position > len(data) + (size & 1):  # the last chunk's padding byte may be missing
            return True
    return False


def _check_dimensions(width: int, height: int, rules: ImageRules) -> None:
    if width * height > rules.max_pixels:
        raise InvalidImage("too_many_pixels", f"{width}x{height}")
    if width < max(rules.min_width, 1) or height < max(rules.min_height, 1):
        raise InvalidImage("too_small", f"{width}x{height}")


def _webp_size(webp: WebPThumbnailer, data: bytes) -> tuple[int, int] | None:
    try:
        return webp.size(data)
    except WebPError as exc:
        raise InvalidImage("truncated" if exc.truncated else "decode_error", str(exc)) from None


def _webp_thumbnail(webp: WebPThumbnailer, data: bytes, size: int) -> Image.Image:
    try:
        return webp.thumbnail(data, size)
    except WebPError as exc:
        raise InvalidImage("truncated" if exc.truncated else "decode_error", str(exc)) from None


def _pillow_cost(
    image: Image.Image, fmt: str, data: bytes, width: int, height: int
) -> decode_cost.DecodeCost:
    try:
        return decode_cost.pillow_cost(image, fmt, data, width, height)
    except Exception:  # a header field the estimate did not expect: assume the worst
        return decode_cost.DecodeCost(decode_cost.worst_case(data, width, height))


@contextmanager
def _admitted(budget: DecodeBudget | None, need: int) -> Iterator[None]:
    """Hold `need` bytes of `budget` while decoding; refuse an image larger than all of it."""
    if budget is None:
        yield
        return
    if not budget.fits(need):
        mb = 1024 * 1024
        raise InvalidImage(
            "too_large_to_decode",
            f"needs about {need // mb} MB to decode; the budget is {budget.capacity // mb} MB",
        )
    with budget.hold(need):
        yield


def _pillow_thumbnail(
    image: Image.Image, fmt: str, data: bytes, size: int, reflate: bool
) -> Image.Image:
    """The thumbnail of `image`, decoded from `data` re-compressed when `reflate`. Full-size
    images left over are closed before returning (or raising), so their memory is free by the
    time the decode's budget is given back."""
    opened = [image]
    thumb: Image.Image | None = None
    try:
        faster = png_reflate.reflate(data) if reflate else None
        if faster is not None:
            opened.append(Image.open(BytesIO(faster), formats=["PNG"]))
        thumb = _decode_thumbnail(opened[-1], fmt, size)
        return thumb
    finally:
        for one in opened:
            if one is not thumb:
                one.close()


def _decode_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if isinstance(exc, EOFError) or "truncated" in text or "premature end" in text:
        return "truncated"
    return "decode_error"


def _decode_thumbnail(image: Image.Image, fmt: str, size: int) -> Image.Image:
    """Decode once (scaled down for JPEG) and return an RGB thumbnail, oriented per EXIF."""
    if fmt == "JPEG":
        _request_draft(image, size)
    try:
        image.load()
        orientation = image.getexif().get(_ORIENTATION_TAG, 1) if fmt != "GIF" else 1
        thumb = _to_rgb(image, size)
    except Image.DecompressionBombError as exc:
        raise InvalidImage("too_many_pixels", str(exc)) from None
    except InvalidImage:
        raise
    except Exception as exc:
        raise InvalidImage(_decode_reason(exc), str(exc)) from None
    for op in _TRANSPOSE.get(int(orientation) if isinstance(orientation, int) else 1, ()):
        thumb = thumb.transpose(op)
    return thumb


def _request_draft(image: Image.Image, size: int) -> None:
    """Ask a JPEG for just enough pixels for the thumbnail's longest side (decoded scaled down
    by up to 8). A second request is ignored, as Pillow ignores it."""
    if getattr(image, "decoderconfig", None):
        return
    width, height = image.size
    scale = size / max(width, height)
    image.draft("RGB", (max(1, int(width * scale)), max(1, int(height * scale))))


def _to_rgb(image: Image.Image, size: int) -> Image.Image:
    """Shrink first and convert the small result, except for modes that cannot be resized."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode.startswith(("I", "F")):
        # 16/32-bit greyscale: scale into 8 bits before anything else.
        image = image.convert("F").point(lambda v: v / 256).convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        image = image.convert("RGB")
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if image.mode in ("RGBA", "LA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def dhash(image: Image.Image) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its left neighbour."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BOX)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        base = row * 9
        for col in range(8):
            bits = (bits << 1) | (pixels[base + col + 1] > pixels[base + col])
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _encode_thumbnail(thumb: Image.Image) -> bytes:
    data = b""
    for quality in (75, 55, 35, 20):
        out = BytesIO()
        thumb.save(out, "JPEG", quality=quality)
        data = out.getvalue()
        if len(data) <= THUMBNAIL_MAX_BYTES:
            break
    return data


def reasons() -> Iterable[str]:
    """Every reason `check_image` can give, for reports that list them all."""
    return (
        "not_an_image",
        "truncated",
        "too_many_pixels",
        "too_large_to_decode",
        "too_small",
        "format_not_allowed",
        "decode_error",
    )

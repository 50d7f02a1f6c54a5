"""WebP through libwebp's scaled decode: same answers as Pillow, damage still caught."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from celery_core.crawler.images import webp_thumbnail
from celery_core.crawler.images.check import (
    ImageRules,
    InvalidImage,
    _decode_thumbnail,
    check_image,
    dhash,
    hamming,
)
from celery_core.diagnostics.pictures import encode, make_picture

RULES = ImageRules()


def pillow_thumbnail(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=["WEBP"]) as image:
        return _decode_thumbnail(image, "WEBP", RULES.thumbnail_size)


def reason(data: bytes, rules: ImageRules = RULES) -> str:
    with pytest.raises(InvalidImage) as info:
        check_image(data, rules)
    return info.value.reason


def with_riff_size(data: bytes) -> bytes:
    """`data` with its RIFF header telling its real length (a cut that looks whole)."""
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


def test_the_library_pillow_ships_is_found() -> None:
    decoder = webp_thumbnail.decoder()
    assert decoder is not None
    assert decoder.size(encode(make_picture(1, (640, 480)), "WEBP")) == (640, 480)


@pytest.mark.parametrize(
    "options", [{"quality": 80}, {"lossless": True}], ids=["lossy", "lossless"]
)
def test_scaled_decode_matches_pillow(options: dict[str, object]) -> None:
    data = encode(make_picture(2, (1600, 1200)), "WEBP", **options)
    checked = check_image(data, RULES)
    reference = pillow_thumbnail(data)
    assert (checked.width, checked.height) == (1600, 1200)
    assert (checked.thumb_width, checked.thumb_height) == reference.size == (160, 120)
    assert hamming(checked.phash, dhash(reference)) <= 2


def test_transparency_is_laid_on_white() -> None:
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (100, 50, 200, 150))
    checked = check_image(encode(image, "WEBP", lossless=True), RULES)
    thumb = Image.open(io.BytesIO(checked.thumbnail)).convert("RGB")
    assert min(thumb.getpixel((5, 5))) > 240  # type: ignore[arg-type]
    red, green, _ = thumb.getpixel((80, 53))  # type: ignore[misc]
    assert red > 150 and green < 60


def test_a_cut_that_looks_whole_is_truncated() -> None:
    data = encode(make_picture(3, (800, 600)), "WEBP", quality=90)
    assert reason(with_riff_size(data[: len(data) // 2])) == "truncated"


def test_a_damaged_bitstream_is_refused() -> None:
    data = encode(make_picture(4, (800, 600)), "WEBP", lossless=True)
    broken = data[:30] + bytes(len(data) - 30)  # header intact, the rest zeroed
    assert reason(broken) in ("decode_error", "truncated")


def test_the_pixel_cap_is_checked_from_the_header() -> None:
    data = bytearray(encode(make_picture(5, (64, 64)), "WEBP", lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    # 14 bits of width - 1, then 14 of height - 1: claim 16384 x 16384.
    data[21:25] = struct.pack("<I", (16383 | 16383 << 14) | (data[24] >> 4 << 28))
    assert reason(bytes(data)) == "too_many_pixels"


def test_animated_files_go_through_pillow() -> None:
    frames = [make_picture(seed, (320, 240)) for seed in (6, 7)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    data = out.getvalue()
    decoder = webp_thumbnail.decoder()
    assert decoder is not None and decoder.size(data) is None
    checked = check_image(data, RULES)
    assert (checked.width, checked.height) == (320, 240)
    assert hamming(checked.phash, dhash(pillow_thumbnail(data))) == 0


def test_exif_orientation_is_honoured() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(make_picture(8, (400, 200)), "WEBP", exif=exif)
    checked = check_image(data, RULES)
    assert (checked.width, checked.height) == (400, 200)
    assert checked.thumb_width < checked.thumb_height

"""Image checks on generated pictures: formats by content, bombs, truncation, hashes, thumbnails."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from celery_core.crawler.images.check import (
    THUMBNAIL_MAX_BYTES,
    ImageRules,
    InvalidImage,
    check_image,
    hamming,
    sniff_format,
)
from celery_core.diagnostics.pictures import encode, make_picture, png_bomb

ALL = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
RULES = ImageRules(allowed_formats=ALL)


def reason(data: bytes, rules: ImageRules = RULES) -> str:
    with pytest.raises(InvalidImage) as info:
        check_image(data, rules)
    return info.value.reason


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [
        ("JPEG", "jpg"),
        ("PNG", "png"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
        ("BMP", "bmp"),
        ("TIFF", "tif"),
    ],
)
def test_formats_are_recognised_by_content(fmt: str, ext: str) -> None:
    data = encode(make_picture(1, (640, 480)), fmt)
    assert sniff_format(data) == fmt
    checked = check_image(data, RULES)
    assert (checked.format, checked.ext, checked.width, checked.height) == (fmt, ext, 640, 480)


def test_text_is_not_an_image() -> None:
    assert sniff_format(b"<!DOCTYPE html><html>") is None
    assert sniff_format(b"BMW is a car, not a bitmap at all") is None
    assert reason(b"<html><body>404</body></html>") == "not_an_image"
    assert reason(b"") == "not_an_image"


def test_truncated_jpeg_is_caught_by_a_real_decode() -> None:
    data = encode(make_picture(2, (800, 600)), "JPEG", quality=90)
    half = data[: len(data) // 2]
    Image.open(io.BytesIO(half)).verify()  # verify() alone lets it through
    assert reason(half) == "truncated"


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP"])
def test_other_truncated_formats(fmt: str) -> None:
    data = encode(make_picture(3, (800, 600)), fmt)
    assert reason(data[: len(data) // 2]) == "truncated"


def test_decompression_bombs_are_refused_before_decoding() -> None:
    # Pillow's own guard fires above 2x its limit and raises DecompressionBombError...
    started = time.monotonic()
    assert reason(png_bomb(30000, 30000)) == "too_many_pixels"
    # ...below that, the header size is checked against max_pixels before any decode.
    assert reason(png_bomb(7000, 7000), ImageRules(max_pixels=40_000_000, allowed_formats=ALL)) == (
        "too_many_pixels"
    )
    assert time.monotonic() - started < 1


def test_tiny_images_are_too_small() -> None:
    rules = ImageRules(allowed_formats=ALL, min_width=100, min_height=80)
    assert reason(encode(make_picture(4, (99, 200)), "PNG"), rules) == "too_small"
    assert reason(encode(make_picture(4, (200, 79)), "PNG"), rules) == "too_small"
    assert check_image(encode(make_picture(4, (100, 80)), "PNG"), rules).width == 100


def test_formats_outside_the_allowed_list_are_refused() -> None:
    rules = ImageRules(allowed_formats=frozenset({"JPEG"}))
    assert reason(encode(make_picture(5), "PNG"), rules) == "format_not_allowed"


def test_garbage_after_a_valid_header_is_a_decode_error() -> None:
    data = encode(make_picture(6, (400, 300)), "PNG")
    broken = data[:33] + bytes(len(data) - 33)  # IHDR intact, everything after zeroed
    assert reason(broken) in ("decode_error", "truncated")


def test_thumbnail_is_a_small_jpeg() -> None:
    checked = check_image(encode(make_picture(7, (1600, 1200))), RULES)
    assert len(checked.thumbnail) < THUMBNAIL_MAX_BYTES
    thumb = Image.open(io.BytesIO(checked.thumbnail))
    assert thumb.format == "JPEG"
    assert thumb.size == (checked.thumb_width, checked.thumb_height) == (160, 120)


def test_transparent_images_get_a_white_background() -> None:
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    checked = check_image(encode(image, "PNG"), RULES)
    thumb = Image.open(io.BytesIO(checked.thumbnail)).convert("RGB")
    assert min(thumb.getpixel((10, 10))) > 240  # type: ignore[arg-type]


def test_exif_orientation_turns_the_thumbnail() -> None:
    image = make_picture(8, (400, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(image, "JPEG", exif=exif)
    checked = check_image(data, RULES)
    assert (checked.width, checked.height) == (400, 200)  # the file as stored
    assert checked.thumb_width < checked.thumb_height  # the preview as displayed


def test_same_bytes_same_sha256_and_hash() -> None:
    data = encode(make_picture(9))
    a, b = check_image(data, RULES), check_image(bytes(data), RULES)
    assert a.sha256 == b.sha256 and a.phash == b.phash
    assert 0 <= a.phash < 2**64 and len(a.phash_hex) == 16


def test_copies_are_near_and_distinct_pictures_are_far() -> None:
    pictures = [make_picture(seed, (800, 600)) for seed in range(12)]
    hashes = [check_image(encode(p), RULES).phash for p in pictures]
    distinct = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distinct) >= 8
    for picture, original in zip(pictures[:4], hashes[:4], strict=True):
        copies = [
            encode(picture.resize((400, 300)), "JPEG", quality=50),
            encode(picture.resize((1000, 750)), "PNG"),
            encode(picture, "WEBP", quality=60),
        ]
        for copy in copies:
            assert hamming(check_image(copy, RULES).phash, original) <= 3

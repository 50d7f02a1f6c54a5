"""PNG image data re-compressed for a fast inflate: same pixels, damage left to Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from celery_core.crawler.images import png_reflate
from celery_core.crawler.images.check import (
    ImageRules,
    InvalidImage,
    _decode_thumbnail,
    _encode_thumbnail,
    check_image,
    dhash,
)
from celery_core.diagnostics.pictures import encode, make_picture

RULES = ImageRules()


def chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    found, position = [], 8
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        body = data[position + 8 : position + 8 + length]
        found.append((data[position + 4 : position + 8], body))
        position += 12 + length
    return found


def interlaced_png(image: Image.Image) -> bytes:
    """`image` (RGB) as an Adam7-interlaced PNG, which Pillow reads but cannot write."""
    width, height = image.size
    pixels = image.tobytes()
    rows = bytearray()
    for x0, y0, dx, dy in png_reflate._ADAM7:
        for y in range(y0, height, dy):
            columns = range(x0, width, dx)
            if not columns:
                continue
            rows.append(0)  # filter: none
            for x in columns:
                start = (y * width + x) * 3
                rows += pixels[start : start + 3]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        png_reflate.SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def picture_in(mode: str) -> bytes:
    image = make_picture(7, (203, 157))
    if mode == "P+transparency":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        return encode(image, "PNG", transparency=3)
    if mode == "I;16":
        image = image.convert("L").point(lambda v: v * 257, "I").convert("I;16")
    elif mode == "1":
        image = image.convert("1")
    else:
        image = image.convert(mode)
    return encode(image, "PNG")


MODES = ["RGB", "RGBA", "L", "LA", "1", "I;16", "P+transparency"]


@pytest.mark.parametrize("mode", MODES)
def test_reflated_png_has_the_same_pixels(mode: str) -> None:
    data = picture_in(mode)
    faster = png_reflate.reflate(data)
    assert faster is not None
    assert decoded(faster) == decoded(data)
    idat = [body for kind, body in chunks(faster) if kind == b"IDAT"]
    assert len(idat) == 1 and idat[0][:2] == b"\x78\x01"  # zlib-ng's fastest level


def test_interlaced_png_keeps_its_pixels() -> None:
    image = make_picture(3, (37, 29))
    data = interlaced_png(image)
    faster = png_reflate.reflate(data)
    assert faster is not None
    assert decoded(faster) == decoded(data) == ("RGB", (37, 29), image.tobytes())


@pytest.mark.parametrize(
    ("size", "depth", "colour", "interlaced", "expected"),
    [
        ((10, 3), 8, 2, False, 3 * (1 + 30)),
        ((10, 3), 1, 0, False, 3 * (1 + 2)),
        ((10, 3), 16, 6, False, 3 * (1 + 80)),
        ((1, 1), 8, 2, True, 1 + 3),  # only the first pass has a pixel
        ((8, 8), 8, 0, True, 2 + 2 + 3 + 6 + 10 + 20 + 36),
    ],
)
def test_raw_size(
    size: tuple[int, int], depth: int, colour: int, interlaced: bool, expected: int
) -> None:
    assert png_reflate.raw_size(*size, depth, colour, interlaced) == expected


def test_check_gives_what_pillow_gives_on_the_original_file() -> None:
    data = encode(make_picture(11, (640, 480)), "PNG")
    assert png_reflate.reflate(data) not in (None, data)
    checked = check_image(data, RULES)
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:  # Pillow alone
        reference = _decode_thumbnail(image, "PNG", RULES.thumbnail_size)
    assert checked.phash == dhash(reference)
    assert checked.thumbnail == _encode_thumbnail(reference)
    assert (checked.width, checked.height, checked.format) == (640, 480, "PNG")


def cut_idat_stream(data: bytes) -> bytes:
    """The image data's deflate stream stops half-way, with every chunk still well-formed."""
    kinds = chunks(data)
    out = png_reflate.SIGNATURE
    for kind, body in kinds:
        out += chunk(kind, body[: len(body) // 2] if kind == b"IDAT" else body)
    return out


def test_damaged_files_are_left_to_pillow() -> None:
    data = encode(make_picture(5, (320, 240)), "PNG")
    cut_file = data[: len(data) // 2]
    cut_stream = cut_idat_stream(data)
    header_end = 8 + 25
    flipped = bytearray(data)
    flipped[header_end + 20] ^= 0xFF  # inside the first IDAT's stream
    for damaged in (cut_file, cut_stream, bytes(flipped)):
        assert png_reflate.reflate(damaged) is None
    # Pillow then reports them as it always did.
    assert_reason(cut_file, "truncated")
    assert_reason(cut_stream, "truncated")


def assert_reason(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidImage) as info:
        check_image(data, RULES)
    assert info.value.reason == expected


def test_more_data_than_the_header_announces_is_left_to_pillow() -> None:
    image = make_picture(6, (40, 30))
    data = encode(image, "PNG")
    rows = b"".join(b"\x00" + image.tobytes()[y * 120 : (y + 1) * 120] for y in range(30))
    longer = png_reflate.SIGNATURE + b"".join(
        chunk(kind, zlib.compress(rows + b"\x00" * 121) if kind == b"IDAT" else body)
        for kind, body in chunks(data)
    )
    assert png_reflate.reflate(longer) is None


def test_animated_and_large_pngs_are_left_alone() -> None:
    frames = [make_picture(seed, (64, 48)) for seed in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    assert b"acTL" in out.getvalue()
    assert png_reflate.reflate(out.getvalue()) is None
    data = encode(make_picture(4, (400, 300)), "PNG")
    assert png_reflate.reflate(data, max_raw=300 * (1 + 1200) - 1) is None
    assert png_reflate.reflate(data, max_raw=300 * (1 + 1200)) is not None


def test_chunks_after_the_image_data_are_kept() -> None:
    data = encode(make_picture(8, (64, 48)), "PNG")
    head, tail = data[:-12], data[-12:]  # tail: the IEND chunk
    text = chunk(b"tEXt", b"Comment\x00after the pixels")
    faster = png_reflate.reflate(head + text + tail)
    assert faster is not None
    assert faster.endswith(text + tail)
    with Image.open(io.BytesIO(faster)) as image:
        image.load()
        assert image.info.get("Comment") == "after the pixels"

"""Decode memory as a budget: the estimate from the header for each format and mode, and the
per-process byte semaphore that admits decodes (waiting in turn, never dropping; refusing an
image larger than the whole budget)."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from celery_core.crawler.images import decode_budget, png_reflate
from celery_core.crawler.images.check import (
    ImageRules,
    InvalidImage,
    _request_draft,
    check_image,
    reasons,
)
from celery_core.crawler.images.decode_budget import MIB, DecodeBudget
from celery_core.crawler.images.decode_cost import (
    FIXED,
    jpeg_buffers_coefficients,
    jpeg_coefficient_bytes,
    pillow_cost,
    pixel_bytes,
    webp_cost,
    webp_kind,
)
from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.settings.crawler_settings import CrawlerSettings
from tests.support.waiting import wait_until

RULES = ImageRules(allowed_formats=frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"}))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_header(width: int, height: int, depth: int, colour: int, extra: bytes = b"") -> bytes:
    """A PNG whose header declares the size and mode; its image data is a few zeros only (the
    estimate reads the header, nothing decodes it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", zlib.compress(bytes(64)))
        + _chunk(b"IEND", b"")
    )


def cost_of(data: bytes) -> Any:
    """The estimate `check_image` would take, for a file Pillow opens (header only)."""
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if image.format == "JPEG":
        _request_draft(image, RULES.thumbnail_size)
    return pillow_cost(image, str(image.format), data, width, height)


def saved(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


# --- the estimate -------------------------------------------------------------------------


def test_pillow_keeps_rgb_in_four_bytes_per_pixel() -> None:
    assert [pixel_bytes(m) for m in ("1", "L", "P", "I;16", "I", "F", "LA", "RGB", "CMYK")] == [
        1, 1, 1, 2, 4, 4, 4, 4, 4,
    ]  # fmt: skip


def test_16_bit_rgba_png_counts_its_8_bit_decode_and_the_premultiplied_copy() -> None:
    # The hostile PNG: 7000x5650, under the 40 MP cap. Pillow decodes 16 bits to 8 (4 bytes a
    # pixel), then thumbnail() premultiplies it into a second full-size image.
    data = png_header(7000, 5650, 16, 6)
    cost = cost_of(data)
    assert cost.plain == FIXED + 7000 * 5650 * 8
    assert cost.reflated is None  # 316 MB of rows: png_reflate leaves it to Pillow


def test_png_modes_count_their_conversions() -> None:
    px = 1000 * 800
    assert cost_of(png_header(1000, 800, 16, 0)).plain == FIXED + px * (2 + 8)  # I;16 -> F, F
    assert cost_of(png_header(1000, 800, 8, 0)).plain == FIXED + px  # L shrinks as it is
    assert cost_of(png_header(1000, 800, 1, 0)).plain == FIXED + px * 2  # 1 -> L
    assert cost_of(png_header(1000, 800, 8, 4)).plain == FIXED + px * 8  # LA + La
    palette = _chunk(b"PLTE", bytes(range(48)))
    assert cost_of(png_header(1000, 800, 8, 3, palette)).plain == FIXED + px * (1 + 4)  # -> RGB
    transparent = palette + _chunk(b"tRNS", b"\x00")
    # A palette with a transparent colour expands to RGBA, which is premultiplied too.
    assert cost_of(png_header(1000, 800, 8, 3, transparent)).plain == FIXED + px * (1 + 8)


def test_an_animated_png_counts_a_second_frame() -> None:
    still = cost_of(png_header(1000, 800, 8, 2)).plain
    actl = _chunk(b"acTL", struct.pack(">II", 2, 0))
    assert cost_of(png_header(1000, 800, 8, 2, actl)).plain == still + 1000 * 800 * 4


def test_png_reflate_counts_the_rows_and_their_copy() -> None:
    data = encode(make_picture(1, (400, 300)), "PNG")
    raw = 300 * (1 + 400 * 3)
    cost = cost_of(data)
    assert cost.plain == FIXED + 400 * 300 * 4
    assert cost.reflated == FIXED + len(data) + max(2 * raw, raw + 400 * 300 * 4)


def test_progressive_jpeg_counts_every_coefficient_at_full_size() -> None:
    image = Image.new("RGB", (800, 640), (40, 90, 200))
    baseline = cost_of(saved(image, "JPEG", subsampling=0))
    progressive = cost_of(saved(image, "JPEG", subsampling=0, progressive=True))
    # 100 x 80 blocks of 64 two-byte coefficients, three components at 4:4:4.
    assert progressive.plain - baseline.plain == 100 * 80 * 3 * 128
    # The draft decode (scaled by 4 for a 160-pixel thumbnail) is what the pixels cost.
    assert baseline.plain == FIXED + 200 * 160 * 4 + 800 * 16 * 4 * 2


def test_coefficients_follow_subsampling_and_components() -> None:
    pixels = 6000 * 6400  # whole MCUs at 4:2:0: no padding
    ycc420 = [(1, 2, 2, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    ycc444 = [(1, 1, 1, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    cmyk = [(n, 1, 1, 0) for n in range(4)]
    assert jpeg_coefficient_bytes(6000, 6400, ycc420) == pixels * 3  # 1.5 samples, 2 bytes
    assert jpeg_coefficient_bytes(6000, 6400, ycc444) == pixels * 6
    assert jpeg_coefficient_bytes(6000, 6400, cmyk) == pixels * 8
    assert jpeg_coefficient_bytes(6000, 6400, []) == pixels * 8  # unknown: the worst case
    # Padded to whole MCUs: 9x9 pixels at 4:2:0 is one 16x16 MCU, six blocks.
    assert jpeg_coefficient_bytes(9, 9, ycc420) == 6 * 128


def test_cmyk_progressive_jpeg_counts_four_components() -> None:
    image = Image.new("CMYK", (800, 640), (10, 20, 30, 40))
    cost = cost_of(saved(image, "JPEG", progressive=True))
    plain = cost_of(saved(image, "JPEG"))
    assert cost.plain - plain.plain == 100 * 80 * 4 * 128


def test_a_sequential_jpeg_coded_in_several_scans_buffers_its_coefficients() -> None:
    # libjpeg keeps the whole image when the first scan codes fewer components than there are.
    def jpeg(scan_components: int) -> bytes:
        sos = b"\xff\xda" + struct.pack(">HB", 6 + 2 * scan_components, scan_components)
        return b"\xff\xd8" + b"\xff\xe0\x00\x04ab" + sos + bytes(2 * scan_components + 3)

    three = SimpleNamespace(info={}, layers=3)
    assert jpeg_buffers_coefficients(three, jpeg(3)) is False
    assert jpeg_buffers_coefficients(three, jpeg(1)) is True
    assert jpeg_buffers_coefficients(three, b"\xff\xd8garbage") is True  # unknown: worst case
    assert jpeg_buffers_coefficients(SimpleNamespace(info={"progressive": 1}, layers=3), jpeg(3))


def test_gif_counts_the_screen_the_disposal_and_the_conversions() -> None:
    image = Image.new("P", (1000, 800))
    image.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    px = 1000 * 800
    assert cost_of(saved(image, "GIF")).plain == FIXED + px * (1 + 1 + 4)
    assert cost_of(saved(image, "GIF", transparency=0)).plain == FIXED + px * (1 + 1 + 8)
    grey = Image.linear_gradient("L").resize((1000, 800))  # a grey palette opens as L
    assert cost_of(saved(grey, "GIF")).plain == FIXED + px * 2


def test_bmp_and_tiff() -> None:
    image = Image.new("RGB", (1000, 800))
    assert cost_of(saved(image, "BMP")).plain == FIXED + 1000 * 800 * 4
    tiff = saved(image, "TIFF")
    # libtiff may read the whole image as one strip before Pillow unpacks it.
    assert cost_of(tiff).plain == FIXED + len(tiff) + 1000 * 800 * (4 + 4)


def test_webp_through_libwebp_counts_what_libwebp_keeps() -> None:
    picture = make_picture(2, (640, 480))
    lossy = encode(picture, "WEBP", quality=80)
    lossless = encode(picture, "WEBP", lossless=True)
    translucent = picture.convert("RGBA")
    translucent.putalpha(Image.linear_gradient("L").resize((640, 480)))
    with_alpha = encode(translucent, "WEBP", quality=80)
    assert webp_kind(lossy) == (False, False)
    assert webp_kind(lossless)[0] is True
    assert webp_kind(with_alpha) == (False, True)
    px = 640 * 480
    assert webp_cost(lossy, 640, 480).plain == FIXED + 640 * 256  # macroblock rows only
    assert webp_cost(lossless, 640, 480).plain == FIXED + px * 4 + 640 * 256  # whole ARGB
    # The alpha plane, decoded through a 32-bit buffer unless its values are few.
    assert webp_cost(with_alpha, 640, 480).plain == FIXED + px * 5 + 640 * 256


def test_webp_through_pillow_counts_the_animation_decoder() -> None:
    picture = make_picture(3, (640, 480))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(picture, "WEBP", quality=80, exif=exif.tobytes())
    # Two RGBA canvases, the frame as bytes and as the image: 16 bytes a pixel.
    assert cost_of(data).plain == FIXED + len(data) + 640 * 480 * 16


# --- the budget's size --------------------------------------------------------------------


def test_automatic_budget_shares_a_fraction_of_memory_between_pool_processes() -> None:
    gib = 1024 * MIB
    assert decode_budget.automatic_bytes(24 * gib, 1) == 160 * MIB  # the worker's ceiling
    assert decode_budget.automatic_bytes(24 * gib, 2) == 80 * MIB
    assert decode_budget.automatic_bytes(24 * gib, 4) == 40 * MIB
    assert decode_budget.automatic_bytes(24 * gib, 16) == 32 * MIB  # the floor per process
    assert decode_budget.automatic_bytes(8 * gib, 2) == 64 * MIB  # a 64th of 8 GB, halved
    assert decode_budget.automatic_bytes(0, 2) == 32 * MIB  # memory unknown


def test_the_setting_wins_over_the_automatic_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decode_budget.budget_bytes(300) == 300 * MIB
    monkeypatch.setattr(decode_budget, "total_memory", lambda: 24 * 1024 * MIB)
    monkeypatch.setenv(decode_budget.POOL_PROCESSES_ENV, "4")
    assert decode_budget.pool_processes() == 4
    assert decode_budget.budget_bytes(0) == 40 * MIB
    monkeypatch.setenv(decode_budget.POOL_PROCESSES_ENV, "many")
    assert decode_budget.pool_processes() == 1


def test_the_setting_has_the_screens_metadata() -> None:
    field = CrawlerSettings.model_fields["decode_memory_mb"]
    assert field.title and field.description and "too_large_to_decode" in field.description
    assert isinstance(field.json_schema_extra, dict)
    assert field.json_schema_extra["group"] == "Images"
    assert CrawlerSettings(_env_file=None).decode_memory_mb == 0
    with pytest.raises(ValueError):
        CrawlerSettings(_env_file=None, decode_memory_mb=-1)


def test_a_worker_tells_its_pool_how_many_processes_share_the_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from celery.concurrency.prefork import TaskPool as Prefork
    from celery.concurrency.thread import TaskPool as Threads

    from celery_core.worker.tasks import _share_pool_size

    monkeypatch.setenv(decode_budget.POOL_PROCESSES_ENV, "1")  # restored afterwards
    _share_pool_size(sender=SimpleNamespace(pool_cls=Prefork, concurrency=4))
    assert decode_budget.pool_processes() == 4
    _share_pool_size(sender=SimpleNamespace(pool_cls="prefork", concurrency=3))
    assert decode_budget.pool_processes() == 3
    # Threads (and solo) run every task in one process, which gets the whole share.
    _share_pool_size(sender=SimpleNamespace(pool_cls=Threads, concurrency=8))
    assert decode_budget.pool_processes() == 1


# --- admission ------------------------------------------------------------------------------


@contextmanager
def holding(budget: DecodeBudget, nbytes: int, log: list[str], name: str) -> Iterator[None]:
    """Run a thread that takes `nbytes`, notes `name`, and holds them until the block ends."""
    done = threading.Event()

    def run() -> None:
        with budget.hold(nbytes):
            log.append(name)
            done.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(10)


def test_a_decode_that_does_not_fit_waits_until_bytes_come_back() -> None:
    budget = DecodeBudget(100)
    log: list[str] = []
    budget.acquire(60)
    with holding(budget, 50, log, "second"):
        wait_until(lambda: budget.waiting == 1, what="the second decode waiting")
        assert log == [] and budget.used == 60
        budget.release(60)
        wait_until(lambda: log == ["second"], what="the second decode admitted")
        assert budget.used == 50
    assert budget.used == 0 and budget.waited == 1 and budget.peak == 60


def test_waiting_decodes_are_admitted_in_arrival_order() -> None:
    # A small request that would fit now still waits behind a large one that came first:
    # the large one is not starved by a stream of small ones.
    budget = DecodeBudget(100)
    log: list[str] = []
    budget.acquire(80)
    with holding(budget, 50, log, "large"):
        wait_until(lambda: budget.waiting == 1, what="the large decode waiting")
        with holding(budget, 10, log, "small"):
            wait_until(lambda: budget.waiting == 2, what="the small decode waiting")
            assert log == []
            budget.release(80)
            wait_until(lambda: len(log) == 2, what="both admitted")
    assert log == ["large", "small"]
    assert budget.used == 0


def test_a_budget_that_shrank_lets_a_lone_large_request_through() -> None:
    budget = DecodeBudget(100)
    assert budget.fits(100) and not budget.fits(101)
    budget.resize(10)
    with budget.hold(50):  # granted: nothing else is held, so it cannot wait forever
        assert budget.used == 50
    assert budget.used == 0


def test_the_process_budget_is_shared_and_follows_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decode_budget, "_process_budget", None)
    first = decode_budget.process_budget(64 * MIB)
    again = decode_budget.process_budget(32 * MIB)
    assert again is first and first.capacity == 32 * MIB


def test_an_image_larger_than_the_whole_budget_is_refused_with_its_reason() -> None:
    budget = DecodeBudget(16 * MIB)
    data = png_header(7000, 5650, 16, 6)  # never decoded: refused from its header
    with pytest.raises(InvalidImage) as caught:
        check_image(data, RULES, budget)
    assert caught.value.reason == "too_large_to_decode"
    need = FIXED + 7000 * 5650 * 8
    assert caught.value.detail == f"needs about {need // MIB} MB to decode; the budget is 16 MB"
    assert (budget.used, budget.peak, budget.waited) == (0, 0, 0)
    assert "too_large_to_decode" in reasons()


def test_an_admitted_image_takes_its_estimate_and_gives_it_back() -> None:
    budget = DecodeBudget(64 * MIB)
    data = encode(make_picture(4, (640, 480)), "PNG")
    checked = check_image(data, RULES, budget)
    assert (checked.width, checked.height) == (640, 480)
    assert budget.used == 0
    cost = cost_of(data)
    assert budget.peak == (cost.reflated if png_reflate.enabled() else cost.plain)
    assert check_image(data, RULES).sha256 == checked.sha256  # the same check without a budget


def test_png_is_not_recompressed_when_the_budget_cannot_hold_the_copy() -> None:
    data = encode(make_picture(5, (1000, 800)), "PNG")
    cost = cost_of(data)
    assert cost.reflated is not None and cost.reflated > cost.plain
    budget = DecodeBudget(cost.plain)  # room for the plain decode only
    checked = check_image(data, RULES, budget)
    assert budget.peak == cost.plain
    assert checked.phash == check_image(data, RULES).phash  # identical pixels either way

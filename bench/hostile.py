"""Images that are legal but huge once decoded, among normal pictures: the decode-memory site.

    uv run python -m bench.hostile --dir /tmp/pix-hostile     # build (cached), print a summary

Each hostile file is a few hundred kilobytes on disk and under the 40 MP pixel cap, yet its
decode path allocates 225-340 MB (measured; docs/benchmarks.md, "Decode memory"):

- `png16`: a 16-bit RGBA PNG of 7000x5650 whose rows are zeros, written with zlib and struct
  (Pillow decodes it to 8-bit RGBA, then shrinking makes a premultiplied copy: 2 x 158 MB);
- `jpeg444`: a progressive 4:4:4 JPEG of a 6000x6600 gradient (libjpeg keeps every DCT
  coefficient of a progressive file, at full size even when it decodes at 1/8 scale: 238 MB);
- `cmyk`: the same as a progressive CMYK JPEG (four components: 317 MB);
- `gif`: a 6000x6600 GIF with a colour palette and a transparent colour (the palette image,
  then RGBA, then a premultiplied copy: 356 MB).

Every hostile file differs from the others by one pixel, so no two are the same file; they
are blank or gradients and hash alike, so a crawl that decodes them keeps one and counts the
rest as near duplicates. The normal pictures are drawn like the benchmark site's
(bench/site.py), without its traps.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import struct
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from bench.site import FORMATS, SIZES
from celery_core.diagnostics.pictures import encode, make_picture

VERSION = 1
KINDS = ("png16", "jpeg444", "cmyk", "gif")


@dataclass(frozen=True)
class HostileFile:
    name: str
    kind: str  # "image" or one of KINDS


@dataclass(frozen=True)
class HostileSite:
    directory: Path
    files: list[HostileFile]

    @property
    def images_dir(self) -> Path:
        return self.directory / "images"


def png16(width: int = 7000, height: int = 5650, variant: int = 0) -> bytes:
    """A 16-bit RGBA PNG of zero rows (one pixel set by `variant`), never held in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = bytes(1 + width * 8)  # filter byte 0, then 8 bytes per pixel
    first = bytearray(row)
    first[1 + (variant % width) * 8 : 1 + (variant % width) * 8 + 8] = b"\xff" * 8
    deflate = zlib.compressobj(9)
    parts = [deflate.compress(bytes(first))]
    parts += [deflate.compress(row) for _ in range(height - 1)]
    parts.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header), chunk(b"IDAT", b"".join(parts)),
         chunk(b"IEND", b"")]
    )  # fmt: skip


def _gradient(width: int, height: int) -> Image.Image:
    return Image.linear_gradient("L").resize((width, height))


def progressive_jpeg(
    width: int = 6000, height: int = 6600, variant: int = 0, mode: str = "RGB"
) -> bytes:
    """A progressive JPEG of a gradient, 4:4:4 (`mode` RGB or CMYK)."""
    grey = _gradient(width, height)
    image = Image.merge("RGB", (grey, grey.transpose(Image.Transpose.FLIP_TOP_BOTTOM), grey))
    if mode == "CMYK":
        image = image.convert("CMYK")
    image.putpixel((variant % width, 0), (255,) * len(image.mode))
    out = io.BytesIO()
    image.save(out, "JPEG", progressive=True, quality=50, subsampling=0)
    return out.getvalue()


def palette_gif(width: int = 6000, height: int = 6600, variant: int = 0) -> bytes:
    """A GIF with a colour palette and a transparent colour."""
    image = Image.frombytes("P", (width, height), _gradient(width, height).tobytes())
    image.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
    image.putpixel((variant % width, 0), (variant * 37 + 1) % 256)
    out = io.BytesIO()
    image.save(out, "GIF", transparency=0)
    return out.getvalue()


def _make_hostile(kind: str, variant: int, directory: str) -> HostileFile:
    if kind == "png16":
        data, ext = png16(variant=variant), "png"
    elif kind == "jpeg444":
        data, ext = progressive_jpeg(variant=variant), "jpg"
    elif kind == "cmyk":
        data, ext = progressive_jpeg(variant=variant, mode="CMYK"), "jpg"
    else:
        data, ext = palette_gif(variant=variant), "gif"
    name = f"hostile-{variant:02d}-{kind}.{ext}"
    (Path(directory) / name).write_bytes(data)
    return HostileFile(name, kind)


def _make_normal(index: int, seed: int, directory: str) -> HostileFile:
    rnd = random.Random(seed * 1_000_003 + index)
    fmt, ext = rnd.choice(FORMATS)
    size = rnd.choice(SIZES)
    image = make_picture(
        seed * 1_000_003 + index, size, shapes=12, gradient=True, noise=fmt != "PNG"
    )
    options = {"quality": 85} if fmt in ("JPEG", "WEBP") else {}
    name = f"{index:05d}.{ext}"
    (Path(directory) / name).write_bytes(encode(image, fmt, **options))
    return HostileFile(name, "image")


def build_hostile_site(
    directory: Path, normal: int = 200, hostile: int = 20, seed: int = 7
) -> HostileSite:
    """Generate the site in `directory` (reused when built with the same parameters)."""
    directory = Path(directory)
    index_file = directory / "site.json"
    key = {"version": VERSION, "normal": normal, "hostile": hostile, "seed": seed}
    if index_file.exists():
        stored = json.loads(index_file.read_text())
        if stored.get("key") == key:
            files = [HostileFile(**f) for f in stored["files"]]
            if all((directory / "images" / f.name).exists() for f in files):
                return HostileSite(directory, files)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.iterdir():
        old.unlink()
    kinds = [KINDS[n % len(KINDS)] for n in range(hostile)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        bad = pool.map(_make_hostile, kinds, range(hostile), [str(images)] * hostile)
        good = pool.map(
            _make_normal, range(normal), [seed] * normal, [str(images)] * normal, chunksize=16
        )
        files = [*bad, *good]
    index_file.write_text(json.dumps({"key": key, "files": [asdict(f) for f in files]}))
    return HostileSite(directory, files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pix-hostile"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    site = build_hostile_site(args.dir)
    sizes: dict[str, list[int]] = {}
    for f in site.files:
        sizes.setdefault(f.kind, []).append((site.images_dir / f.name).stat().st_size)
    summary = {k: {"files": len(v), "kb_each_max": max(v) // 1024} for k, v in sizes.items()}
    print(json.dumps({"dir": str(site.images_dir), "kinds": summary,
                      "seconds": round(time.perf_counter() - started, 1)}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

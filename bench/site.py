"""A local image site for benchmarks: >= 1,000 generated pictures of mixed formats and sizes,
with traps, cached on disk so only the first run pays for generating them.

    uv run python -m bench.site build --dir /tmp/pix-site            # generate (cached)
    uv run python -m bench.site serve --dir /tmp/pix-site --port 8765 # serve on 127.0.0.1
    uv run python -m bench.site crawl --dir /tmp/pix-site             # serve in a subprocess,
                                                                     # crawl in-process, report

In code: `site = build_site(Path(...))`; `site.files` lists every file with its kind
("image", "duplicate", "near_duplicate", "truncated", "html", "bomb", "tiny"), and
`serve_forever(site.images_dir, port)` serves them (content type from the suffix, so a trap
named .jpg is announced as a JPEG whatever it holds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from celery_core.diagnostics.pictures import encode, make_picture, png_bomb

VERSION = 2
SIZES = [(320, 240), (640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200), (1200, 1600)]
FORMATS = [("JPEG", "jpg")] * 7 + [("PNG", "png")] * 2 + [("WEBP", "webp")]
TRAP_EVERY = 20  # one trap per this many pictures
CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


@dataclass(frozen=True)
class SiteFile:
    name: str
    kind: str
    format: str


@dataclass(frozen=True)
class Site:
    directory: Path
    files: list[SiteFile]

    @property
    def images_dir(self) -> Path:
        return self.directory / "images"

    def expected_kept(self) -> int:
        return sum(1 for f in self.files if f.kind == "image")


def _make(index: int, seed: int, directory: str) -> list[SiteFile]:
    """Write picture `index` (and, every TRAP_EVERY pictures, one trap next to it)."""
    rnd = random.Random(seed * 1_000_003 + index)
    fmt, ext = rnd.choice(FORMATS)
    size = rnd.choice(SIZES)
    # Twelve shapes over a tinted gradient, grain unless PNG (graphics, as most PNGs on the web
    # are): photo-like to encode. Built sites are cached under VERSION: draw them otherwise
    # and VERSION must change, or old sites are reused.
    image = make_picture(
        seed * 1_000_003 + index, size, shapes=12, gradient=True, noise=fmt != "PNG"
    )
    out = Path(directory)
    name = f"{index:05d}.{ext}"
    options = {"quality": 85} if fmt in ("JPEG", "WEBP") else {}
    (out / name).write_bytes(encode(image, fmt, **options))
    made = [SiteFile(name, "image", fmt)]
    if index % TRAP_EVERY == TRAP_EVERY - 1:
        kind = ["duplicate", "near_duplicate", "truncated", "html", "bomb", "tiny"][
            (index // TRAP_EVERY) % 6
        ]
        trap = f"trap-{index:05d}-{kind}.jpg"
        if kind == "duplicate":
            data = (out / name).read_bytes()
        elif kind == "near_duplicate":
            data = encode(
                image.resize((size[0] // 2, size[1] // 2)).convert("RGB"), "JPEG", quality=60
            )
        elif kind == "truncated":
            data = encode(image, "JPEG", quality=85)
            data = data[: len(data) // 2]
        elif kind == "html":
            data = b"<!DOCTYPE html><html><body>Image not found</body></html>"
        elif kind == "bomb":
            data = png_bomb(30000, 30000)
        else:
            data = encode(image.resize((12, 9)), "PNG")
        (out / trap).write_bytes(data)
        made.append(SiteFile(trap, kind, "JPEG"))
    return made


def build_site(
    directory: Path, count: int = 1000, seed: int = 0, workers: int | None = None
) -> Site:
    """Generate the site in `directory`, or reuse it if it was built with the same parameters."""
    directory = Path(directory)
    index_file = directory / "site.json"
    key = {"version": VERSION, "count": count, "seed": seed}
    if index_file.exists():
        stored = json.loads(index_file.read_text())
        if stored.get("key") == key:
            files = [SiteFile(**f) for f in stored["files"]]
            if all((directory / "images" / f.name).exists() for f in files):
                return Site(directory, files)
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    for old in images.iterdir():
        old.unlink()
    with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
        chunks = pool.map(_make, range(count), [seed] * count, [str(images)] * count, chunksize=16)
        files = [f for chunk in chunks for f in chunk]
    index_file.write_text(json.dumps({"key": key, "files": [asdict(f) for f in files]}))
    return Site(directory, files)


# --- serving ------------------------------------------------------------------------------


def serve_forever(images_dir: Path, port: int, port_file: Path | None = None) -> None:
    """Serve `images_dir` on 127.0.0.1:`port` (0: any free port, written to `port_file`)."""
    from aiohttp import web

    # Held in memory: this server shares the crawler's two cores (a real site would not), so
    # the less CPU it takes per request, the less it skews what is measured.
    files = {
        path.name: (path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        for path in images_dir.iterdir()
        if path.is_file()
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404)
        return web.Response(body=found[0], content_type=found[1])

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/images/{name}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        actual = runner.addresses[0][1]
        if port_file is not None:
            tmp = port_file.with_suffix(".tmp")
            tmp.write_text(str(actual))
            tmp.replace(port_file)
        print(f"serving {images_dir} on http://127.0.0.1:{actual}/images/", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server_process(images_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Serve in a child process (so the server does not compete for this process's GIL)."""
    port_file = Path(tempfile.mkdtemp()) / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.site", "serve", "--images", str(images_dir),
         "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("benchmark server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def crawl_site(
    site: Site, base_url: str, root: Path, target: int | None = None
) -> dict[str, object]:
    """Crawl every file of `site` in-process with the real engine; return the figures."""
    from celery_core.crawler.dedup.index import LocalDedupIndex
    from celery_core.crawler.engine import run_keyword
    from celery_core.crawler.types import Candidate
    from celery_core.settings.crawler_settings import CrawlerSettings

    urls = [f"{base_url}/images/{f.name}" for f in site.files]

    async def candidates() -> AsyncIterator[Candidate]:
        for url in urls:
            yield Candidate(url=url, source="urls")

    settings = CrawlerSettings(
        _env_file=None,  # type: ignore[call-arg]
        allow_private_networks=True,
        max_per_host=64,
    )
    started, cpu = time.perf_counter(), time.process_time()
    result = run_keyword(
        candidates(),
        root=root,
        category="bench",
        keyword="site",
        target=target or len(urls),
        min_width=100,
        min_height=100,
        settings=settings,
        dedup=LocalDedupIndex(),
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = result.counts
    return {
        "files": len(urls),
        "kept": counts.kept,
        "expected_kept": site.expected_kept(),
        "duplicates": counts.duplicates,
        "invalid": counts.invalid_reasons,
        "failed": counts.failed_reasons,
        "elapsed_s": round(elapsed, 2),
        "candidates_per_s": round(len(urls) / elapsed, 1),
        "kept_per_s": round(counts.kept / elapsed, 1),
        "cpu_s": round(cpu, 2),  # every thread of this process: the engine's whole cost
        "cpu_workers": settings.cpu_workers or os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.site", description=(__doc__ or "").split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "crawl"):
        cmd = sub.add_parser(name)
        cmd.add_argument(
            "--dir", type=Path, default=Path(tempfile.gettempdir()) / "pixcrawler-bench-site"
        )
        cmd.add_argument("--count", type=int, default=1000)
        cmd.add_argument("--seed", type=int, default=0)
    serve = sub.add_parser("serve")
    serve.add_argument("--images", type=Path, required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--port-file", type=Path)
    args = parser.parse_args(argv)

    if args.command == "serve":
        serve_forever(args.images, args.port, args.port_file)
        return 0
    started = time.perf_counter()
    site = build_site(args.dir, args.count, args.seed)
    total = sum((site.images_dir / f.name).stat().st_size for f in site.files)
    print(
        f"site: {len(site.files)} files, {total / 1e6:.0f} MB in {site.images_dir} "
        f"({time.perf_counter() - started:.1f} s to build or load)"
    )
    if args.command == "crawl":
        proc, port = start_server_process(site.images_dir)
        try:
            with tempfile.TemporaryDirectory() as root:
                figures = crawl_site(site, f"http://127.0.0.1:{port}", Path(root))
        finally:
            proc.terminate()
            proc.wait(10)
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

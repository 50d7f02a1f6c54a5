"""The floor under any crawl of a site: the image checks alone, on every core, from memory.

    uv run python -m bench.check_floor --dir /tmp/pix-site [--processes 2]

Each process reads its share of the site's files into memory and runs `check_image` on
each (the real decode, hashes and thumbnail the engine does), with no HTTP, no disk writes,
no dedup and no Celery. The wall time is what no pipeline on this machine can beat; the
per-format CPU times show where it goes. `crawl_bench` runs it too (part "floor").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.site import build_site


def _check_share(paths: list[str]) -> dict[str, list[float]]:
    from celery_core.crawler.images.check import ImageRules, InvalidImage, check_image, sniff_format

    rules = ImageRules(min_width=100, min_height=100)
    datas = [Path(p).read_bytes() for p in paths]
    spent: dict[str, list[float]] = defaultdict(list)
    for data in datas:
        kind = sniff_format(data) or "other"
        started = time.thread_time()
        try:
            check_image(data, rules)
        except InvalidImage:
            kind = "refused"
        spent[kind].append(time.thread_time() - started)
    return dict(spent)


def check_floor(images: list[Path], processes: int) -> dict[str, Any]:
    shares = [[str(p) for p in images[i::processes]] for i in range(processes)]
    # Forked after the imports, so each process starts its share warm.
    import celery_core.crawler.images.check  # noqa: F401

    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(_check_share, [s[:5] for s in shares])  # warm up
        started = time.perf_counter()
        results = pool.map(_check_share, shares)
        elapsed = time.perf_counter() - started
    merged: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for kind, times in result.items():
            merged[kind] += times
    cpu = sum(sum(t) for t in merged.values())
    return {
        "files": len(images),
        "processes": processes,
        "elapsed_s": round(elapsed, 2),  # includes reading the files from the page cache
        "files_per_s": round(len(images) / elapsed, 1),
        "check_cpu_s": round(cpu, 2),
        "ms_per_file": {k: round(sum(t) / len(t) * 1000, 2) for k, t in sorted(merged.items())},
        "count": {k: len(t) for k, t in sorted(merged.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pix-site"))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)
    site = build_site(args.dir, args.count)
    images = [site.images_dir / f.name for f in site.files]
    print(json.dumps(check_floor(images, args.processes), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Crawl throughput: through Celery, in-process, download-only, and icrawler, on one local site.

    uv sync --group bench
    uv run python -m bench.crawl_bench --dir /tmp/pix-site [--count 1000] [--skip-icrawler]

Builds (or reuses) a local site of generated pictures with traps (bench/site.py), serves it
from a separate process on 127.0.0.1, and measures, in one run:
1. download-only: aiohttp fetching every URL, no checks (the network ceiling);
2. the check floor: every file checked from memory on every core, nothing else
   (bench/check_floor.py);
3. the engine in-process, without Celery (every check, dedup, thumbnails);
4. the same list as a job through Celery and a real worker (`pixcrawler worker`, prefork,
   one process per core), with Redis progress, thumbnails and the shared dedup index;
   the worker's peak memory (largest process and whole process tree) is sampled;
5. icrawler 0.6.10's UrlListCrawler on the same list (it keeps duplicates and most traps),
   alternating with 3 and 4 under --repeat, and the wall-clock ratio run by run.
Prints one JSON object; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.check_floor import check_floor
from bench.site import Site, build_site, crawl_site, start_server_process


def download_only(urls: list[str], concurrency: int = 64) -> dict[str, Any]:
    import aiohttp

    async def main() -> tuple[int, int]:
        sem = asyncio.Semaphore(concurrency)
        total = 0
        ok = 0
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(url: str) -> None:
                nonlocal total, ok
                async with sem, session.get(url) as response:
                    body = await response.read()
                    total += len(body)
                    ok += response.status == 200

            await asyncio.gather(*(one(u) for u in urls))
        return ok, total

    started = time.perf_counter()
    ok, total = asyncio.run(main())
    elapsed = time.perf_counter() - started
    return {
        "files": len(urls),
        "ok": ok,
        "megabytes": round(total / 1e6, 1),
        "elapsed_s": round(elapsed, 2),
        "files_per_s": round(len(urls) / elapsed, 1),
    }


class MemorySampler:
    """Samples the resident memory of a process and its descendants (Linux /proc).

    `pss=True` counts each process's proportional set size (smaps_rollup) instead of its RSS:
    pages shared by prefork children are then counted once over the tree, not once each."""

    def __init__(self, pid: int, interval: float = 0.1, pss: bool = False) -> None:
        self.pid = pid
        self.interval = interval
        self.size_mb = _pss_mb if pss else _rss_mb
        self.peak_process_mb = 0.0
        self.peak_tree_mb = 0.0
        self.cpu_s = 0.0  # user + system time of the tree since the sampler started
        self.main_cpu_s = 0.0  # the same for the process itself (Celery's consumer)
        self._cpu_start: float | None = None
        self._main_start: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            tree = _tree(self.pid)
            sizes = [self.size_mb(p) for p in tree]
            cpu = sum(_cpu_s(p) for p in tree)
            if self._cpu_start is None:
                self._cpu_start = cpu
            self.cpu_s = max(self.cpu_s, cpu - self._cpu_start)
            main = _cpu_s(self.pid)
            if self._main_start is None:
                self._main_start = main
            self.main_cpu_s = max(self.main_cpu_s, main - self._main_start)
            if sizes:
                self.peak_process_mb = max(self.peak_process_mb, max(sizes))
                self.peak_tree_mb = max(self.peak_tree_mb, sum(sizes))
            if self._stop.wait(self.interval):
                return


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def machine_busy_s() -> float:
    """CPU seconds spent by every process on the machine since boot (all cores)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def file_create_us(work: Path, count: int = 300) -> int:
    """CPU microseconds to create one empty file in `work`. Normally about 20; ext4 takes
    hundreds for some minutes after thousands of files near it were deleted (it skips
    recently freed inodes one by one), which would slow every crawl measured here."""
    probe = work / "create-probe"
    probe.mkdir()
    started = time.process_time()
    for n in range(count):
        os.close(os.open(probe / f"{n}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return round((time.process_time() - started) / count * 1e6)


def _served(pid: int, before: float) -> float:
    """CPU the image server (on the same cores, unlike a real web site) used since `before`."""
    return round(_cpu_s(pid) - before, 2)


def through_celery(urls: list[str], work: Path, concurrency: int) -> dict[str, Any]:
    from celery_core.jobs.control import read_job, submit_job
    from celery_core.jobs.spec import parse_job
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app
    from tests.support.redis_proc import RedisProcess
    from tests.support.worker_proc import WorkerProcess

    with RedisProcess(work / "redis") as redis_proc:
        env = {
            "PIXCRAWLER_CELERY_BROKER_URL": redis_proc.url(0),
            "PIXCRAWLER_CELERY_RESULT_BACKEND": redis_proc.url(1),
            "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "64",
        }
        os.environ.update(env)
        app = create_app(CelerySettings.load(), follow_results=False)
        job = {
            "dataset_name": "bench",
            "categories": {"bench": [{"name": "site", "urls": urls}]},
            "options": {"max_images": len(urls), "output_dir": str(work / "celery-out")},
        }
        spec = parse_job(job).spec
        with WorkerProcess(env, concurrency=concurrency, include=()) as worker:
            worker.wait_ready(60)
            assert worker.proc is not None
            with MemorySampler(worker.proc.pid) as memory:
                busy = machine_busy_s()
                assert redis_proc.proc is not None
                redis_cpu = _cpu_s(redis_proc.proc.pid)
                own_cpu = time.process_time()
                started = time.perf_counter()
                handle = submit_job(app, spec)
                # Woken by the backend's publish of the final step's result, not by polling,
                # so the measurement takes no CPU from the worker while it runs.
                with redis_proc.client(1) as backend, backend.pubsub() as channel:
                    channel.subscribe(f"celery-task-meta-{handle.callback_id}")
                    while True:
                        progress = read_job(app, handle.job_id)
                        if progress is not None and progress.finished:
                            break
                        channel.get_message(timeout=1.0)
                elapsed = time.perf_counter() - started
                busy = machine_busy_s() - busy
                redis_cpu = _cpu_s(redis_proc.proc.pid) - redis_cpu
                own_cpu = time.process_time() - own_cpu
        app.close()
    return {
        "tasks": len(handle.task_ids),
        "worker_processes": concurrency,
        "state": progress.state,
        "kept": progress.counts.kept,
        "duplicates": progress.counts.duplicates,
        "invalid": progress.counts.invalid,
        "failed": progress.counts.failed,
        "elapsed_s": round(elapsed, 2),
        "kept_per_s": round(progress.counts.kept / elapsed, 1),
        "files_per_s": round(len(urls) / elapsed, 1),
        "worker_cpu_s": round(memory.cpu_s, 2),
        "worker_main_process_cpu_s": round(memory.main_cpu_s, 2),
        "worker_cpu_use_pct": round(100 * memory.cpu_s / (elapsed * (os.cpu_count() or 1)), 1),
        "machine_cpu_use_pct": round(100 * busy / (elapsed * (os.cpu_count() or 1)), 1),
        "redis_cpu_s": round(redis_cpu, 2),
        "submitter_cpu_s": round(own_cpu, 2),  # submitting, then following the job
        "worker_peak_process_mb": round(memory.peak_process_mb, 1),
        "worker_peak_tree_mb": round(memory.peak_tree_mb, 1),
    }


def icrawler_run(urls: list[str], work: Path, threads: int) -> dict[str, Any]:
    import logging

    from icrawler.builtin import UrlListCrawler

    work.mkdir(parents=True, exist_ok=True)
    url_file = work / "urls.txt"
    url_file.write_text("\n".join(urls))
    out = work / "icrawler-out"
    crawler = UrlListCrawler(downloader_threads=threads, storage={"root_dir": str(out)},
                             log_level=logging.ERROR)  # fmt: skip
    wall_start = time.time()
    started = time.perf_counter()
    crawler.crawl(str(url_file), max_num=len(urls))  # its default stops at 1,000 files
    elapsed = time.perf_counter() - started
    saved = [p for p in out.rglob("*") if p.is_file()]
    # Its download threads exit only after finding the queue empty for 5 s: the call returns
    # that much after the last file. The rate counts up to the last file written, in its favour.
    working = max((p.stat().st_mtime for p in saved), default=wall_start) - wall_start
    return {
        "downloader_threads": threads,
        "urls": len(urls),
        "saved_files": len(saved),
        "returned_after_s": round(elapsed, 2),
        "last_file_after_s": round(working, 2),
        "urls_per_s": round(len(urls) / working, 1) if working > 0 else None,
        "wall_urls_per_s": round(len(urls) / elapsed, 1),
        "note": "no decode check, no dedup: duplicates and most broken files are saved",
    }


def _median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median `key` (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "pix-site")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--skip-icrawler", action="store_true")
    parser.add_argument(
        "--only", choices=("download", "floor", "engine", "celery", "icrawler"), action="append",
        help="run only these parts (repeatable); default: all",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="run the engine and Celery parts this many times, alternating; report the median",
    )  # fmt: skip
    parser.add_argument(
        "--work", type=Path, default=None,
        help="where the crawls write (default: a new temporary folder, removed at the end)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)  # the docs' command names a new folder
    site: Site = build_site(args.dir, args.count)
    server, port = start_server_process(site.images_dir)
    base = f"http://127.0.0.1:{port}"
    urls = [f"{base}/images/{f.name}" for f in site.files]
    results: dict[str, Any] = {"site": {"files": len(urls), "expected_kept": site.expected_kept()}}
    try:
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            work = Path(tmp)
            results["file_create_us"] = file_create_us(work)
            if results["file_create_us"] > 200:
                print(
                    f"warning: creating a file takes {results['file_create_us']} us here (ext4 "
                    "does this for some minutes after many files were deleted near this "
                    "folder): every figure will be low; try --work elsewhere or wait",
                    file=sys.stderr,
                )
            parts = set(args.only or ("download", "floor", "engine", "celery", "icrawler"))
            if args.skip_icrawler:
                parts.discard("icrawler")
            if "download" in parts:
                results["download_only"] = download_only(urls)
            if "floor" in parts:
                images = [site.images_dir / f.name for f in site.files]
                results["check_floor"] = check_floor(images, args.concurrency)
            # icrawler's default run (the goal's reference) joins the alternation: the machine
            # is shared and its speed drifts, so each ratio compares runs minutes apart.
            no_bombs = [f"{base}/images/{f.name}" for f in site.files if f.kind != "bomb"]
            runs: dict[str, list[dict[str, Any]]] = {"in_process": [], "celery": [],
                                                     "icrawler_default": []}  # fmt: skip
            for n in range(args.repeat):
                # Alternating, so a noisy neighbour on the machine hits both alike.
                if "engine" in parts:
                    served = _cpu_s(server.pid)
                    runs["in_process"].append(crawl_site(site, base, work / f"engine-out{n}"))
                    runs["in_process"][-1]["site_server_cpu_s"] = _served(server.pid, served)
                if "celery" in parts:
                    served = _cpu_s(server.pid)
                    runs["celery"].append(through_celery(urls, work / f"c{n}", args.concurrency))
                    runs["celery"][-1]["site_server_cpu_s"] = _served(server.pid, served)
                if "icrawler" in parts:
                    # A decompression bomb raises an error icrawler does not catch, which ends
                    # the downloader thread that met it: rates are taken on the list without
                    # the bombs (every URL handled), and the whole list shows where it stops.
                    runs["icrawler_default"].append(
                        icrawler_run(no_bombs, work / f"i1-{n}", threads=1)
                    )
            for name, done in runs.items():
                rate = "wall_urls_per_s" if name.startswith("icrawler") else "kept_per_s"
                if done:
                    results[name] = _median_run(done, rate)
                    if len(done) > 1:
                        results[f"{name}_{rate}_runs"] = [r[rate] for r in done]
            if runs["celery"] and runs["icrawler_default"]:
                # Wall clock against wall clock, run by run: our kept images per second over
                # its URLs per second from the call to its return.
                ratios = [
                    c["kept_per_s"] / i["wall_urls_per_s"]
                    for c, i in zip(runs["celery"], runs["icrawler_default"], strict=False)
                ]
                results["wall_clock_ratio_vs_icrawler_runs"] = [round(r, 2) for r in ratios]
                median = sorted(ratios)[(len(ratios) - 1) // 2]
                results["wall_clock_ratio_vs_icrawler"] = round(median, 2)
            if "icrawler" in parts:
                results["icrawler"] = icrawler_run(no_bombs, work / "i8", threads=8)
                whole = icrawler_run(urls, work / "i1a", 1)
                del whole["urls_per_s"], whole["wall_urls_per_s"]  # it stopped at the first bomb
                results["icrawler_default_whole_list"] = whole
    finally:
        server.kill()
        server.wait()
    if "in_process" in results and "celery" in results:
        engine = results["in_process"]["kept_per_s"]
        celery = results["celery"]["kept_per_s"]
        results["celery_overhead_pct"] = round((1 - celery / engine) * 100, 1) if engine else None
        # Run by run as well: each Celery run against the engine run just before it.
        pairs = zip(runs["in_process"], runs["celery"], strict=False)
        overheads = sorted(
            (1 - c["kept_per_s"] / e["kept_per_s"]) * 100 for e, c in pairs if e["kept_per_s"]
        )
        if len(overheads) > 1:
            results["celery_overhead_pct_paired_median"] = round(
                overheads[(len(overheads) - 1) // 2], 1
            )
    for name in ("icrawler_default", "icrawler"):
        if name in results and "celery" in results:
            # Wall-clock rates: our kept images per second against its URLs per second.
            results[f"speedup_vs_{name}"] = round(
                results["celery"]["kept_per_s"] / results[name]["urls_per_s"], 2
            )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())

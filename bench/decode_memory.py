"""Decode memory: the peak PSS of a real worker's process tree crawling the hostile site.

    uv run python -m bench.decode_memory --dir /tmp/pix-hostile --work /var/tmp/pix-work \\
        --concurrency 2 --concurrency 4 --repeat 2 [--compare /tmp/pix-before]

Builds (or reuses) the hostile site (bench/hostile.py: 20 images of 225-340 MB decoded each
among 200 normal pictures), serves it from a separate process on 127.0.0.1, and crawls it as
one job through a real Redis and a real `pixcrawler worker --concurrency N`. The job has 8
keywords, so every pool process has work at once, and each keyword's list starts with its
share of the hostile images: all pool processes and all their check threads meet them
together, the worst case. While the job runs, the proportional set size (PSS, from
/proc/PID/smaps_rollup) of the worker and all its descendants is summed every 0.2 s; the
peak is reported, with the tree's PSS when it was idle and ready and the job's outcome.

`--compare DIR` runs the worker from another source tree too (say, `git archive HEAD` unpacked
in /tmp/pix-before), alternating with this one run by run, so both meet the same machine.
`--decode-memory-mb N` sets PIXCRAWLER_CRAWLER_DECODE_MEMORY_MB for the worker (default:
automatic). Prints one JSON object; docs/benchmarks.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.crawl_bench import MemorySampler, _pss_mb, _tree
from bench.hostile import HostileSite, build_hostile_site
from bench.site import start_server_process

KEYWORDS = 8


def job_lists(
    site: HostileSite, base: str, keywords: int = KEYWORDS, hostile: bool = True
) -> list[list[str]]:
    """The site cut into `keywords` URL lists, each starting with its share of hostile images
    (none with `hostile=False`: the normal pictures alone, for reference)."""
    bad = [f.name for f in site.files if f.kind != "image" and hostile]
    normal = [f.name for f in site.files if f.kind == "image"]
    lists = [bad[k::keywords] + normal[k::keywords] for k in range(keywords)]
    return [[f"{base}/images/{name}" for name in names] for names in lists]


def run_once(
    lists: list[list[str]], work: Path, concurrency: int, tree: Path | None, budget_mb: int | None
) -> dict[str, Any]:
    from celery_core.jobs.control import read_job, submit_job
    from celery_core.jobs.spec import parse_job
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app
    from tests.support.redis_proc import RedisProcess
    from tests.support.worker_proc import WorkerProcess

    work.mkdir(parents=True)
    with RedisProcess(work / "redis") as redis_proc:
        env = {
            "PIXCRAWLER_CONFIG_DIR": str(work / "config"),  # no settings file of this machine
            "PIXCRAWLER_CELERY_BROKER_URL": redis_proc.url(0),
            "PIXCRAWLER_CELERY_RESULT_BACKEND": redis_proc.url(1),
            "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "64",
        }
        if budget_mb is not None:
            env["PIXCRAWLER_CRAWLER_DECODE_MEMORY_MB"] = str(budget_mb)
        os.environ.update(env)
        app = create_app(CelerySettings.load(), follow_results=False)
        spec = parse_job(
            {
                "dataset_name": "decode-memory",
                "categories": {
                    "bench": [{"name": f"k{n}", "urls": urls} for n, urls in enumerate(lists)]
                },
                "options": {
                    "max_images": max(len(urls) for urls in lists),
                    "output_dir": str(work / "out"),
                },
            }
        ).spec
        with WorkerProcess(env, concurrency=concurrency, include=(), cwd=tree) as worker:
            worker.wait_ready(60)
            assert worker.proc is not None
            idle = sum(_pss_mb(pid) for pid in _tree(worker.proc.pid))
            with MemorySampler(worker.proc.pid, interval=0.2, pss=True) as memory:
                started = time.perf_counter()
                handle = submit_job(app, spec)
                with redis_proc.client(1) as backend, backend.pubsub() as channel:
                    channel.subscribe(f"celery-task-meta-{handle.callback_id}")
                    while True:
                        progress = read_job(app, handle.job_id)
                        if progress is not None and progress.finished:
                            break
                        channel.get_message(timeout=1.0)
                elapsed = time.perf_counter() - started
        app.close()
    counts = progress.counts
    return {
        "tree": str(tree) if tree else "this",
        "worker_processes": concurrency,
        "decode_memory_mb": budget_mb if budget_mb is not None else "auto",
        "state": progress.state,
        "kept": counts.kept,
        "duplicates": counts.duplicates,
        "invalid": dict(counts.invalid_reasons),
        "failed": dict(counts.failed_reasons),
        "elapsed_s": round(elapsed, 2),
        "worker_cpu_s": round(memory.cpu_s, 2),
        "idle_tree_pss_mb": round(idle, 1),
        "peak_tree_pss_mb": round(memory.peak_tree_mb, 1),
        "peak_process_pss_mb": round(memory.peak_process_mb, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "pix-hostile")
    parser.add_argument("--work", type=Path, default=None, help="where the crawls write")
    parser.add_argument(
        "--concurrency", type=int, action="append", help="pool processes (repeatable; 2 and 4)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--compare", type=Path, help="another source tree to run alternately")
    parser.add_argument("--decode-memory-mb", type=int, default=None)
    parser.add_argument(
        "--normal-only", action="store_true", help="leave the hostile images out (reference)"
    )
    args = parser.parse_args(argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    site = build_hostile_site(args.dir)
    server, port = start_server_process(site.images_dir)
    lists = job_lists(site, f"http://127.0.0.1:{port}", hostile=not args.normal_only)
    trees: list[Path | None] = [None] if args.compare is None else [args.compare.resolve(), None]
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            for n in range(args.repeat):
                for concurrency in args.concurrency or [2, 4]:
                    # Alternating, and in the other order each round, so drift hits both alike.
                    for tree in trees if n % 2 == 0 else trees[::-1]:
                        work = Path(tmp) / f"r{len(runs)}"
                        runs.append(run_once(lists, work, concurrency, tree, args.decode_memory_mb))
                        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    finally:
        server.kill()
        server.wait()
    summary: dict[str, dict[str, Any]] = {}
    for run in runs:
        key = f"{run['tree']} x{run['worker_processes']}"
        entry = summary.setdefault(key, {"peak_tree_pss_mb": [], "elapsed_s": []})
        entry["peak_tree_pss_mb"].append(run["peak_tree_pss_mb"])
        entry["elapsed_s"].append(run["elapsed_s"])
    for entry in summary.values():
        entry["max_peak_tree_pss_mb"] = max(entry["peak_tree_pss_mb"])
    print(json.dumps({"site": str(site.images_dir), "runs": runs, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())

"""The `crawl` role: submit a job file, show progress in the terminal, print a summary."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pixcrawler_gui.cli import (
    EXIT_FAILED,
    EXIT_NO_WORKER,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    fail,
    worker_entry_argv,
)


def add_parser(sub: Any) -> None:
    crawl = sub.add_parser(
        "crawl",
        help="crawl a job file into a dataset",
        description="Submit JOB.json to the workers, show progress and print a summary.",
        epilog="exit codes: 0 the job finished (some failed downloads and keywords short of "
        "their target are normal); 1 it failed, was cancelled, or there was too little room "
        "to start; 2 a bad job file; 3 no worker answered; 4 it finished with problems (a "
        "keyword got nothing because every one of its sources failed: offline, a captcha; "
        "the summary says why).",
    )
    crawl.add_argument("job", type=Path, help="the job file (JSON)")
    crawl.add_argument("--out", type=Path, metavar="DIR", help="dataset root folder")
    crawl.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    crawl.add_argument("--no-wait", action="store_true", help="submit and print the job id")
    crawl.add_argument(
        "--local-worker",
        action="store_true",
        help="start a worker for this run (and the embedded Redis if none answers)",
    )


def _err(message: str) -> None:
    fail(message)


def _out_problem(out: Path | None) -> str | None:
    """Why `--out` cannot hold the dataset (the job file's own output_dir is checked on load)."""
    if out is None:
        return None
    from celery_core.jobs.limits import dataset_folder_problem, path_text_problem

    return path_text_problem(str(out)) or dataset_folder_problem(out.expanduser().absolute())


def run(args: argparse.Namespace) -> int:
    from celery_core.jobs.spec import JobError, load_job

    try:
        loaded = load_job(args.job)
    except JobError as exc:
        _err(str(exc))
        return EXIT_USAGE
    problem = _out_problem(args.out)
    if problem:
        _err(f"--out {problem}")
        return EXIT_USAGE
    for warning in loaded.warnings:
        _err(f"warning: {warning}")
    if not _room_for(loaded.spec, args.out):
        return EXIT_FAILED
    with _services(args.local_worker) as (app, worker_ok):
        if not worker_ok:
            _err(
                "no worker answered. Start one with `pixcrawler worker` (here or on another "
                "machine sharing this Redis), or run again with --local-worker."
            )
            return EXIT_NO_WORKER
        from celery_core.jobs.control import submit_job

        handle = submit_job(app, loaded.spec, args.out)
        if args.no_wait:
            out = {"job_id": handle.job_id, "state": "queued", "output_dir": handle.output_dir}
            print(json.dumps(out) if args.json else f"submitted job {handle.job_id}")
            return EXIT_OK
        return _follow(app, handle, args.json)


def _room_for(spec: Any, out: Path | None) -> bool:
    """Warn when the job will clearly not fit on its disk; False when too little room is
    left to start at all."""
    from celery_core.jobs.control import NotEnoughSpace, check_space
    from pixcrawler_gui.presentation.job_text import space_text

    check = check_space(spec, out)
    if check is None:
        return True
    if check.refused:
        _err(str(NotEnoughSpace(check)))
        return False
    warning = space_text(check)
    if warning:
        _err(f"warning: {warning}")
    return True


def _follow(app: Any, handle: Any, as_json: bool) -> int:
    from celery_core.jobs.control import cancel_job, read_job
    from celery_core.jobs.state import JobState
    from pixcrawler_gui.presentation.job_text import problem_text
    from pixcrawler_gui.presentation.source_text import source_problem_text

    started = time.monotonic()
    bar = _ProgressBar(enabled=sys.stderr.isatty() and not as_json)
    cancelled_by_user = False
    progress = None
    while True:
        try:
            progress = read_job(app, handle.job_id)
            if progress is not None:
                bar.show(progress)
                if progress.finished:
                    break
            time.sleep(0.25)  # polling pace of a terminal progress bar
        except KeyboardInterrupt:
            if cancelled_by_user:
                raise
            cancelled_by_user = True
            _err("cancelling: stopping after the current images (Ctrl+C again to leave now)")
            cancel_job(app, handle.job_id)
    bar.close()
    assert progress is not None
    summary = {
        "job_id": handle.job_id,
        "state": progress.state,
        "in_folder": progress.in_folder,  # what the dataset holds now
        "kept": progress.counts.kept,  # added by this run
        "already_had": progress.already_had,
        "duplicates": progress.counts.duplicates,
        "invalid": progress.counts.invalid,
        "failed": progress.counts.failed,
        "elapsed_s": round(time.monotonic() - started, 2),
        "output_dir": handle.output_dir,
        "report": progress.summary.get("report"),
        "keywords": [
            {
                "category": k.category,
                "keyword": k.keyword,
                "kept": k.counts.kept,
                "already_had": k.already_had,
                "state": k.state,
            }
            | ({"error": k.error} if k.error else {})
            | (
                {"error": source_problem_text(k.source_errors), "source_errors": k.source_errors}
                if k.sources_all_failed
                else {}
            )
            for k in progress.keywords
        ],
    }
    fault = progress.fault
    if fault is not None:
        from pixcrawler_gui.presentation.job_text import fault_text

        # Stopped because the dataset could not be written: what, where, how much room was left.
        summary["error"] = fault_text(fault)
        summary["fault"] = {
            "kind": fault.kind,  # disk_full or not_writable
            "path": fault.path,
            "free_bytes": fault.free_bytes,
            "errno": fault.error,  # ENOSPC, EDQUOT, EACCES, EPERM or EROFS
        }
    elif progress.error:
        summary["error"] = progress.error
    elif progress.state == JobState.FINISHED_WITH_PROBLEMS:
        summary["error"] = problem_text(progress)
    if as_json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return exit_code(progress.state)


def exit_code(state: str) -> int:
    """What `pixcrawler crawl` exits with for a job that ended in `state`."""
    from celery_core.jobs.state import SUCCEEDED_JOB_STATES, JobState

    if state in SUCCEEDED_JOB_STATES:
        return EXIT_OK
    if state == JobState.FINISHED_WITH_PROBLEMS:
        return EXIT_PROBLEMS
    return EXIT_FAILED


def _print_summary(s: dict[str, Any]) -> None:
    had = f", {s['already_had']} there before" if s["already_had"] else ""
    print(
        f"Job {s['state']}: {s['in_folder']} images in the folder ({s['kept']} kept by this "
        f"run{had}), {s['duplicates']} duplicates, "
        f"{s['invalid']} invalid, {s['failed']} failed downloads in {s['elapsed_s']:.1f} s"
    )
    print(f"Dataset: {s['output_dir']}")
    if s.get("report"):
        print(f"Report:  {s['report']}")
    for kw in s["keywords"]:
        if kw.get("error"):
            print(f"  {kw['category']}/{kw['keyword']}: {kw['error']}")
    if s.get("error"):
        print(f"Error: {s['error']}")


class _ProgressBar:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.width = 30

    def show(self, p: Any) -> None:
        if not self.enabled:
            return
        fraction = min(1.0, p.in_folder / p.target) if p.target else 0.0
        filled = int(fraction * self.width)
        eta = f" ETA {p.eta_s:4.0f}s" if p.eta_s is not None else ""
        line = (
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {p.in_folder}/{p.target} in folder"
            f"  dup {p.counts.duplicates}  invalid {p.counts.invalid}  failed {p.counts.failed}"
            f"  {p.rate:5.1f}/s{eta}  {p.state:<10}"
        )
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


@contextmanager
def _services(local_worker: bool) -> Iterator[tuple[Any, bool]]:
    """The Celery app, the embedded Redis and a local worker as this run needs them."""
    from celery_core.diagnostics.verify import worker_answers
    from celery_core.redis_server.connection import (
        RedisUnavailable,
        effective_settings,
        resolve_endpoints,
    )
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app

    settings = CelerySettings.load()
    try:
        endpoints, server = resolve_endpoints(settings, allow_embedded=True)
    except RedisUnavailable as exc:
        _err(str(exc))
        raise SystemExit(EXIT_NO_WORKER) from None
    effective = effective_settings(settings, endpoints)
    app = create_app(effective, follow_results=False)
    worker: subprocess.Popen[bytes] | None = None
    try:
        ok = bool(worker_answers(app, timeout=1.5))
        if not ok and local_worker:
            worker = _start_local_worker(effective)
            ok = _wait(lambda: bool(worker_answers(app, timeout=1.0)), worker, timeout=60)
        yield app, ok
    finally:
        if worker is not None:
            _stop(worker)
        app.close()
        if server is not None:
            server.stop()


def _start_local_worker(settings: Any) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PIXCRAWLER_CELERY_BROKER_URL"] = settings.broker_url
    env["PIXCRAWLER_CELERY_RESULT_BACKEND"] = settings.result_backend
    name = f"pixcrawler-cli-{uuid.uuid4().hex[:6]}@%h"
    argv = [*worker_entry_argv(), "worker", "--name", name, "--loglevel", "WARNING"]
    return subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=sys.platform != "win32",
    )


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _err(f"the local worker exited with code {proc.returncode}")
            return False
        if condition():
            return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, 9) if sys.platform != "win32" else proc.kill()
            proc.wait(5)

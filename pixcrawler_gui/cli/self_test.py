"""The `self-test` role: crawl a small generated site end to end on this machine.

Headless, and the same in a source checkout and in the packaged app: it uses the configured
Redis if one answers, else starts the embedded one (the packaged server when frozen), starts a
worker by running this program again, serves generated pictures on 127.0.0.1, crawls them,
checks the dataset, and stops what it started. One PASS/FAIL line per step on stdout; stderr
stays empty when all is well. Exit code 0 when every step passed, 1 otherwise.

The self-test keeps to itself: its tasks travel on Redis databases of their own, so workers
already running for the user's real jobs never see them, and only its worker may download
from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixcrawler_gui.cli import EXIT_FAILED, EXIT_OK, worker_entry_argv

# Databases the self-test's broker and results use, apart from the app's own (0 and 1).
BROKER_DB, BACKEND_DB = 14, 15
LOOPBACK = "127.0.0.1/32"
STEP_WIDTH = 14


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "self-test",
        help="crawl a small local image site end to end and check the dataset",
        description="Starts the embedded Redis if none answers and a worker, serves generated "
        "images on 127.0.0.1, crawls them, checks the dataset and the report, and stops "
        "everything. Exit 0 when all is well.",
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, metavar="S", help="longest wait for the crawl"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the dataset, job file and worker log"
    )


class StepFailed(Exception):
    """A step went wrong; `str()` says what, in a few words."""


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str


class SelfTest:
    """The steps, in order; each prints its line as it ends."""

    def __init__(self, workdir: Path, timeout: float, out: Callable[[str], None]) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.out = out
        self.results: list[StepResult] = []

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def step(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail, ok = action(), True
        except StepFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # any other error is this step's failure, said in one line
            detail, ok = f"{type(exc).__name__}: {_one_line(exc)}", False
        result = StepResult(name, ok, time.monotonic() - started, detail)
        self.results.append(result)
        status = "PASS" if ok else "FAIL"
        self.out(f"{status}  {name:<{STEP_WIDTH}} {result.seconds:7.2f} s  {detail}")
        return ok

    def run(self) -> bool:
        from celery_core.diagnostics.selftest_site import SelfTestSite

        with ExitStack() as stack:
            services = _Services(self.workdir)
            stack.callback(lambda: self.step("shutdown", services.stop))
            site = SelfTestSite()
            steps: list[tuple[str, Callable[[], str]]] = [
                ("redis", services.start_redis),
                ("process spawn", _spawn_probe),
                ("image decoders", _decoders),
                ("image site", lambda: _start_site(site, stack)),
                ("worker", services.start_worker),
                ("job file", lambda: services.write_job(site)),
                ("crawl", lambda: services.crawl(self.timeout)),
                ("counts", lambda: services.check_counts(site.expected)),
                ("dataset", lambda: services.check_dataset(site.expected)),
            ]
            for name, action in steps:
                if not self.step(name, action):
                    break
        return self.ok


def _one_line(exc: BaseException) -> str:
    from celery_core.settings.redis_urls import mask_secrets

    text = " ".join(str(exc).split())
    return mask_secrets(text)[:300] or type(exc).__name__


def _spawn_probe() -> str:
    from celery_core.diagnostics.selftest_checks import spawn_round_trip

    pid = spawn_round_trip()
    return f"a spawned pool process (pid {pid}) answered"


def _decoders() -> str:
    from celery_core.diagnostics.selftest_checks import decoders_check

    return decoders_check()


def _start_site(site: Any, stack: ExitStack) -> str:
    site.start()
    stack.callback(site.stop)
    return f"{len(site.image_urls())} files on {site.base_url}"


class _Services:
    """Redis, the Celery app, the worker and the job: what the steps start, use and stop."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.dataset = workdir / "dataset"
        self.job_path = workdir / "job.json"
        self.worker_log = workdir / "worker.log"
        self.server: Any = None
        self.settings: Any = None
        self.app: Any = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.node = f"pixcrawler-selftest-{uuid.uuid4().hex[:6]}@{_hostname()}"
        self.worker_ready_s: float | None = None
        self.spec: Any = None
        self.handle: Any = None
        self.progress: Any = None

    def start_redis(self) -> str:
        from celery_core.redis_server.connection import RedisUnavailable, resolve_endpoints
        from celery_core.settings.celery_settings import CelerySettings
        from celery_core.settings.redis_urls import mask_url, with_db
        from celery_core.worker.app import create_app

        settings = CelerySettings.load()
        try:
            endpoints, self.server = resolve_endpoints(settings, allow_embedded=True)
        except RedisUnavailable as exc:
            raise StepFailed(str(exc)) from None
        self.settings = settings.updated(
            broker_url=with_db(endpoints.broker_url, BROKER_DB),
            result_backend=with_db(endpoints.broker_url, BACKEND_DB),
        )
        self.app = create_app(self.settings)
        info = endpoints.embedded
        if info is None:
            return f"the configured Redis at {mask_url(endpoints.broker_url)} answers"
        how = "started" if self.server is not None else "reused"
        version = info.version or "server"
        return f"{how} the embedded {version} ({info.binary}) on {info.host}:{info.port}"

    def start_worker(self) -> str:
        argv = [*worker_entry_argv(), "worker", "--name", self.node, "--concurrency", "2"]
        argv += ["--loglevel", "INFO"]
        started = time.monotonic()
        with open(self.worker_log, "ab") as log:
            self.worker = subprocess.Popen(
                argv,
                env=self._worker_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=sys.platform != "win32",
            )
        deadline = started + 90
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise StepFailed(
                    f"the worker exited with code {self.worker.returncode}; see {self.worker_log}"
                )
            if _answers(self.app, self.node):
                self.worker_ready_s = time.monotonic() - started
                return f"{self.node} answered {self.worker_ready_s:.2f} s after its launch"
        raise StepFailed(f"the worker did not answer within 90 s; see {self.worker_log}")

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PIXCRAWLER_CELERY_BROKER_URL"] = self.settings.broker_url
        env["PIXCRAWLER_CELERY_RESULT_BACKEND"] = self.settings.result_backend
        env["PYTHONUNBUFFERED"] = "1"
        # Only this worker may download from loopback, where the generated site is.
        env["PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS"] = LOOPBACK
        env["PIXCRAWLER_CRAWLER_ALLOW_PRIVATE_NETWORKS"] = "false"
        # Settings a user may have changed that would make a correct crawl look wrong.
        env["PIXCRAWLER_CRAWLER_PROXY_URL"] = ""
        env["PIXCRAWLER_CRAWLER_ALLOWED_FORMATS"] = "JPEG,PNG,WEBP"
        env["PIXCRAWLER_CRAWLER_RESPECT_ROBOTS"] = "true"
        return env

    def write_job(self, site: Any) -> str:
        from celery_core.diagnostics.selftest_checks import selftest_job
        from celery_core.jobs.spec import load_job

        job = selftest_job(site.image_urls(), self.dataset)
        self.job_path.write_text(json.dumps(job, indent=2), encoding="utf-8")
        loaded = load_job(self.job_path)
        self.spec = loaded.spec
        urls = sum(len(item.urls) for item in loaded.spec.work_items())
        return f"{self.job_path.name}: {urls} URLs, validated"

    def crawl(self, timeout: float) -> str:
        from celery_core.jobs.control import read_job, submit_job

        self.handle = submit_job(self.app, self.spec)
        deadline = time.monotonic() + timeout
        progress = None
        while time.monotonic() < deadline:
            progress = read_job(self.app, self.handle.job_id)
            if progress is not None and progress.finished:
                break
            if self.worker is not None and self.worker.poll() is not None:
                raise StepFailed(f"the worker exited with code {self.worker.returncode}")
            time.sleep(0.2)  # polling pace, as `pixcrawler crawl` does
        else:
            state = progress.state if progress is not None else "unknown"
            raise StepFailed(f"the job did not finish within {timeout:.0f} s (state {state})")
        assert progress is not None
        self.progress = progress
        summary = (
            f"job {progress.state}: {progress.counts.kept} kept, "
            f"{progress.counts.duplicates} duplicate(s), "
            f"{progress.counts.invalid} invalid, {progress.counts.failed} failed"
        )
        if progress.state != "finished":
            raise StepFailed(summary + (f": {progress.error}" if progress.error else ""))
        return summary

    def check_counts(self, expected: Any) -> str:
        p = self.progress
        got = (p.counts.kept, p.counts.duplicates, p.counts.invalid, p.counts.failed)
        want = (expected.kept, expected.duplicates, expected.invalid, 0)
        if got != want:
            raise StepFailed(
                "kept/duplicates/invalid/failed are {}/{}/{}/{}, expected {}/{}/{}/{}".format(
                    *got, *want
                )
            )
        return "kept {}, duplicates {}, invalid {}, failed {}: as expected".format(*got)

    def check_dataset(self, expected: Any) -> str:
        from celery_core.diagnostics.selftest_checks import LABEL_FORMATS, dataset_problems

        problems = dataset_problems(self.dataset, expected)
        if problems:
            raise StepFailed("; ".join(problems))
        return (
            f"{expected.kept} images match manifest.jsonl, report.json and labels "
            f"({', '.join(LABEL_FORMATS)})"
        )

    def stop(self) -> str:
        done = []
        if self.worker is not None:
            code = _stop_worker(self.app, self.node, self.worker)
            done.append(f"worker exited ({code})")
        if self.app is not None:
            self.app.close()
        if self.server is not None:
            self.server.stop()
            done.append("embedded Redis stopped")
        return ", ".join(done) or "nothing to stop"


def _answers(app: Any, node: str) -> bool:
    """Whether `node` answers a ping; returns as soon as it does (limit=1)."""
    replies = app.control.ping(destination=[node], limit=1, timeout=0.2) or []
    return any(node in reply for reply in replies)


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _stop_worker(app: Any, node: str, proc: subprocess.Popen[bytes]) -> int:
    """A warm shutdown through Celery (works on every platform), then harder if need be."""
    if proc.poll() is None and app is not None:
        try:
            app.control.shutdown(destination=[node])
        except Exception:  # the broker is gone: the signal below still works
            pass
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.terminate()
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="pixcrawler-self-test-")).resolve()
    passed = False
    try:
        test = SelfTest(workdir, args.timeout, lambda line: print(line, flush=True))
        passed = test.run()
    finally:
        if args.keep or not passed:
            # On failure the worker log and the dataset say what went wrong.
            print(f"Files of this run are in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(f"Self-test {'passed' if passed else 'FAILED'} in {elapsed:.1f} s.")
    return EXIT_OK if passed else EXIT_FAILED

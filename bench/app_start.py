"""From launching the desktop app to its first worker answering: what a double-click costs.

    uv run python -m bench.app_start [--runs 5]                    # from source
    python3 bench/app_start.py --exe /usr/bin/pixcrawler --redis-server \\
        /opt/pixcrawler/_internal/redis/valkey-server              # the installed package

Each run is a first run: an empty home, settings and data folder, so the app starts the one
worker a first run gets. The app is pointed at a Redis this script starts (so it can watch the
worker answer), offscreen. Readiness is the worker answering a Celery ping; the app is then
closed with SIGTERM, as the desktop does at logout, which stops the worker. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.redis_proc import RedisProcess

NODE_PREFIX = "pixcrawler-local-"


def one_run(command: list[str], redis_proc: RedisProcess, timeout: float) -> dict[str, Any]:
    from celery import Celery

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", ""),
            "QT_QPA_PLATFORM": "offscreen",
            "PIXCRAWLER_CONFIG_DIR": str(home / "config"),
            "PIXCRAWLER_DATA_DIR": str(home / "data"),
            "PIXCRAWLER_LOG_DIR": str(home / "logs"),
            "PIXCRAWLER_CELERY_BROKER_URL": redis_proc.url(0),
            "PIXCRAWLER_CELERY_RESULT_BACKEND": redis_proc.url(1),
        }
        watcher = Celery(broker=redis_proc.url(0))
        started = time.monotonic()
        app = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        ready = None
        node = ""
        try:
            while time.monotonic() - started < timeout and app.poll() is None:
                replies = watcher.control.ping(timeout=0.1) or []
                nodes = [n for reply in replies for n in reply if n.startswith(NODE_PREFIX)]
                if nodes:
                    ready, node = time.monotonic() - started, nodes[0]
                    break
        finally:
            app.send_signal(signal.SIGTERM)
            try:
                _, err = app.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                _, err = app.communicate()
            watcher.close()
        saved = json.loads((home / "config" / "workers.json").read_text())
        return {
            "worker_ready_s": None if ready is None else round(ready, 2),
            "node": node,
            "app_exit_code": app.returncode,
            "saved_workers": saved["workers"],
            "stderr_lines": len(err.decode(errors="replace").splitlines()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exe", help="an installed pixcrawler executable (default: from source)")
    parser.add_argument("--redis-server", help="the server binary to run (default: as tests do)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    command = [args.exe, "gui"] if args.exe else [sys.executable, "-m", "pixcrawler_gui", "gui"]
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc = RedisProcess(Path(tmp) / "redis")
        if args.redis_server:
            redis_proc.binary = args.redis_server
        with redis_proc:
            runs = [one_run(command, redis_proc, args.timeout) for _ in range(args.runs)]
    times = [r["worker_ready_s"] for r in runs if r["worker_ready_s"] is not None]
    result = {
        "command": " ".join(command),
        "runs": runs,
        "worker_ready_s": {
            "first": times[0] if times else None,
            "median": round(statistics.median(times), 2) if times else None,
            "max": max(times) if times else None,
        },
    }
    print(json.dumps(result, indent=2))
    return 0 if len(times) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())

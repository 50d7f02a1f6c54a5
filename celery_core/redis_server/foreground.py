"""`pixcrawler redis`: run the embedded Redis server in a terminal until Ctrl+C or SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from celery_core.redis_server.binary import RedisBinaryNotFound
from celery_core.redis_server.embedded import EmbeddedRedis, EmbeddedRedisError, ServerInfo
from celery_core.redis_server.process import process_alive

_CHECK_EVERY = 0.5


def _stop_signals() -> list[signal.Signals]:
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")  # SIGBREAK: Ctrl+Break on Windows
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def describe(server: EmbeddedRedis, info: ServerInfo, out: TextIO) -> None:
    """Where the server listens and how to connect, with the password masked."""
    origin = "started" if server.owned else "already running; joined"
    lines = [
        f"PixCrawler Redis server {origin}: {info.version or info.binary} (pid {info.pid})",
        f"  listening on   {info.host}:{info.port} (this computer only)",
        f"  broker URL     {info.masked_url(0)}",
        f"  results URL    {info.masked_url(1)}",
        f"  password       stored in {server.state_file} (readable only by you)",
        f"  data and log   {server.directory} ({server.log_file.name})",
        f"  program        {info.binary}",
        "PixCrawler's app, `pixcrawler crawl` and workers on this computer find it by themselves.",
        "Press Ctrl+C to stop.",
    ]
    print("\n".join(lines), file=out, flush=True)


def run(directory: Path | None = None, out: TextIO | None = None) -> int:
    """Start (or join) the server, print how to reach it, block until a stop signal."""
    stream = out or sys.stdout
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers go in first so a signal during start-up still ends in a clean shutdown.
    previous: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in _stop_signals():
        previous[sig] = signal.signal(sig, on_signal)
    server = EmbeddedRedis(directory)
    try:
        return _serve(server, stop, stream)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(server: EmbeddedRedis, stop: threading.Event, out: TextIO) -> int:
    try:
        info = server.start()
    except (RedisBinaryNotFound, EmbeddedRedisError) as exc:
        print(f"pixcrawler redis: {exc}", file=sys.stderr, flush=True)
        return 1
    code = 0
    try:
        describe(server, info, out)
        while not stop.wait(_CHECK_EVERY):
            if not server.running():
                print(
                    f"pixcrawler redis: the server exited unexpectedly; see {server.log_file}",
                    file=sys.stderr,
                    flush=True,
                )
                code = 1
                break
    finally:
        server.stop()
    if process_alive(info.pid):
        print("Redis server left running: other PixCrawler processes still use it.", file=out)
    elif code == 0:
        print("Redis server stopped; its data is saved.", file=out)
    out.flush()
    return code

"""A real `pixcrawler worker` subprocess whose log lines tests can wait on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(
        self,
        env: dict[str, str],
        queues: str = "crawl,validation,default",
        pool: str = "prefork",
        concurrency: int = 1,
        include: Sequence[str] = ("tests.support.tasks",),
        name: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name or f"test-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        self.env = env
        self.cwd = cwd or REPO  # another source tree runs its own code (`python -m` from cwd)
        self.argv = [
            sys.executable,
            "-m",
            "pixcrawler_gui",
            "worker",
            "--name",
            self.name,
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--queues",
            queues,
            "--loglevel",
            "INFO",
        ]
        for module in include:
            self.argv += ["--include", module]
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> WorkerProcess:
        self.lines.clear()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        reader.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log()}")
            return f"{self.name} ready." in self.log()

        wait_until(ready, timeout=timeout, what=f"{self.name} ready")

    def kill_hard(self) -> None:
        """SIGKILL the whole process group, as if the machine lost power."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        try:  # pool children that outlived the main process
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""One run of a worker program under `QProcess`, with its output split into lines.

The worker gets its own process group (a new session on POSIX), so a hard stop reaches its
pool children too, and a Ctrl+C in the terminal that started the app does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment

from celery_core.settings.redis_urls import mask_secrets


@dataclass(frozen=True)
class ProcessExit:
    exit_code: int | None  # None when the process was killed by a signal or never started
    crashed: bool  # killed by a signal, or failed to start
    error: str | None = None  # why it could not start
    signal: int | None = None  # the signal that killed it (POSIX only)


class _Process(QProcess):
    def forget(self) -> None:
        """Make Qt consider the process finished, so destroying this object leaves it running."""
        self.setProcessState(QProcess.ProcessState.NotRunning)


class WorkerProcess(QObject):
    """Start a worker, report its output line by line and await its exit."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str | None,
        on_lines: Callable[[list[str]], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.argv = list(argv)
        self._on_lines = on_lines
        self._partial = b""
        self._exit: asyncio.Future[ProcessExit] | None = None
        self._pid: int | None = None
        self._process = _Process(self)
        self._process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        environment = QProcessEnvironment()
        for key, value in env.items():
            environment.insert(key, value)
        self._process.setProcessEnvironment(environment)
        if cwd:
            self._process.setWorkingDirectory(cwd)
        if sys.platform != "win32":
            self._new_session()
        self._process.readyReadStandardOutput.connect(self._read)
        self._process.finished.connect(self._finished)
        self._process.errorOccurred.connect(self._error)

    def _new_session(self) -> None:
        if hasattr(QProcess, "UnixProcessParameters"):
            # Done by Qt between fork and exec: no Python runs in the child of a threaded process.
            params = QProcess.UnixProcessParameters()
            params.flags = QProcess.UnixProcessFlag.CreateNewSession
            self._process.setUnixProcessParameters(params)
        else:  # older Qt: run setsid in the child between fork and exec
            modifier = getattr(self._process, "setChildProcessModifier", None)
            if modifier is not None:
                modifier(os.setsid)

    @property
    def pid(self) -> int | None:
        return self._pid

    def running(self) -> bool:
        return self._process.state() != QProcess.ProcessState.NotRunning

    def start(self) -> None:
        self._exit = asyncio.get_running_loop().create_future()
        self._process.start(self.argv[0], self.argv[1:])
        pid = self._process.processId()
        self._pid = int(pid) if pid else None

    async def wait(self) -> ProcessExit:
        """Resolve when the process has exited (through Qt's `finished` signal, never a wait)."""
        assert self._exit is not None, "start() first"
        return await asyncio.shield(self._exit)

    def terminate(self) -> None:
        """Ask for a warm shutdown: SIGTERM on POSIX (finish running tasks, then exit)."""
        if self.running():
            self._process.terminate()

    def kill(self) -> None:
        """Kill the worker and everything in its process group at once."""
        if sys.platform != "win32" and self._pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)
        if self.running():
            self._process.kill()

    def detach(self) -> None:
        """Leave the worker running after the app exits; its output is no longer read."""
        self._process.readyReadStandardOutput.disconnect(self._read)
        self._process.finished.disconnect(self._finished)
        self._process.errorOccurred.disconnect(self._error)
        self._process.forget()
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(ProcessExit(None, False, "left running"))

    def _read(self) -> None:
        data = self._partial + bytes(self._process.readAllStandardOutput().data())
        *complete, self._partial = data.split(b"\n")
        if complete:
            self._on_lines([_clean(line) for line in complete])

    def _flush(self) -> None:
        self._read()
        if self._partial:
            rest, self._partial = self._partial, b""
            self._on_lines([_clean(rest)])

    def _finished(self, exit_code: int, status: QProcess.ExitStatus) -> None:
        self._flush()
        self._reap_group()
        crashed = status == QProcess.ExitStatus.CrashExit
        # On POSIX, Qt reports the number of the signal that ended a crashed process.
        killed_by = exit_code if crashed and sys.platform != "win32" and exit_code > 0 else None
        self._resolve(ProcessExit(None if crashed else exit_code, crashed, signal=killed_by))

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            # `finished` is never emitted for a program that did not start.
            self._resolve(ProcessExit(None, True, self._process.errorString()))

    def _reap_group(self) -> None:
        """Pool children may outlive a killed main process: end the rest of its group."""
        if sys.platform != "win32" and self._pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, signal.SIGKILL)

    def _resolve(self, result: ProcessExit) -> None:
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(result)


def _clean(line: bytes) -> str:
    return mask_secrets(line.decode("utf-8", errors="replace").rstrip("\r"))

"""Process liveness, signals, free ports and file locks for the embedded Redis server.

Kept apart from the server logic because each function has a POSIX and a Windows variant.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from types import TracebackType


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    """True while process `pid` exists and has not exited.

    A finished child of this process is reaped here: a server whose `Popen` object was
    dropped would otherwise stay a zombie and look alive forever.
    """
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not _is_zombie(pid)
    return done == 0


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no procfs (macOS): a zombie there is its parent's to reap
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def _windows_alive(pid: int) -> bool:
    if sys.platform == "win32":  # repeated so type checkers on POSIX skip the Win32 calls
        import ctypes

        # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
        process_query_limited_information = 0x1000
        still_active = 259
        error_access_denied = 5
        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
        if not handle:
            return bool(kernel32.GetLastError() == error_access_denied)
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == still_active
        finally:
            kernel32.CloseHandle(handle)
    return False


def signal_process(pid: int, hard: bool = False) -> None:
    """SIGTERM (Redis then persists and exits), or SIGKILL with `hard`. Windows: terminate."""
    sig = signal.SIGTERM
    if hard and sys.platform != "win32":
        sig = signal.SIGKILL
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.kill(pid, sig)


def wait_gone(pid: int, timeout: float, interval: float = 0.02) -> bool:
    """Poll until `pid` has exited; False if it is still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


class FileLock:
    """An exclusive lock on a file, released when the holding process (or its fd) goes away.

    POSIX uses `flock`, which also lets a child process inherit the lock (see `fileno`).
    Windows locks the first byte with `msvcrt.locking`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def fileno(self) -> int:
        if self._fd is None:
            raise RuntimeError(f"lock {self.path} is not held")
        return self._fd

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if _try_lock(fd):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def acquire(self, timeout: float, interval: float = 0.02) -> None:
        """Wait up to `timeout` seconds for the lock; raise TimeoutError after that."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.path} stayed locked by another process for {timeout} s")
            time.sleep(interval)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _unlock(fd)
        os.close(fd)

    def detach(self) -> None:
        """Close this process's handle; a child that inherited the fd keeps the lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def write_text(self, text: str) -> None:
        """Replace the lock file's content (for example the holder's pid) without unlocking."""
        fd = self.fileno()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, text.encode())

    def read_text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)

"""The quick loop: tests here start no process and open no socket.

Anything that needs a real Redis, a worker, an HTTP server or Qt belongs in
tests/integration. The guard below turns a slip into a failure naming the rule.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

_RULE = "unit tests start no processes and open no sockets: move this test to tests/integration"


@pytest.fixture(autouse=True)
def _no_processes_or_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(_RULE)

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    yield

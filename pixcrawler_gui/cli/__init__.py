"""The `pixcrawler` command: one module per role, listed in `main.ROLES`.

This package module holds what the roles share: exit codes, error lines, and how this program
starts itself again in another role. It imports no role, so roles import it freely."""

from __future__ import annotations

import socket
import sys
import uuid

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_WORKER = 0, 1, 2, 3
EXIT_PROBLEMS = 4  # `crawl`: finished, but a keyword got nothing (all its sources failed)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print one `pixcrawler: ...` line on stderr and return `code` for the role to exit with."""
    print(f"pixcrawler: {message}", file=sys.stderr)
    return code


def worker_entry_argv() -> list[str]:
    """How to start this program again in another role (the packaged app re-runs itself)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "pixcrawler_gui"]


def default_node_name(prefix: str = "pixcrawler") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"

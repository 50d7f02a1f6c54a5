"""What the packaged (frozen) executable must do before it reads its command line.

The packaged app is one executable with several roles. Process pools re-run that executable
with command lines of their own instead of a role:

- billiard (Celery's pool) in spawn mode, the macOS default: `pixcrawler --billiard-fork
  pipe_handle=7 ...` for each pool process, and `pixcrawler -c "from
  billiard.semaphore_tracker import main;main(5)"` (or the forkserver) for its helpers;
- multiprocessing: `--multiprocessing-fork ...` and `-c "from multiprocessing.resource_tracker
  import main;main(5)"`, handled by PyInstaller's `multiprocessing.freeze_support()`.

`run_helper_if_requested()` recognises these, runs the helper and exits; the desktop app never
starts in a pool process. A `-c` command runs only if it is exactly one of the known helper
calls with literal arguments, so the executable does not become a general Python interpreter.

`attach_missing_streams()` gives a process without a console (a Windows `--windowed` build,
where `sys.stdout` and `sys.stderr` are None) a log file, so workers can still write logs.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "HelperCall",
    "attach_missing_streams",
    "helper_call",
    "is_frozen",
    "run_helper_if_requested",
]

BILLIARD_FORK = "--billiard-fork"
MULTIPROCESSING_FORK = "--multiprocessing-fork"
# module -> functions a helper command line may call in it.
HELPER_FUNCTIONS: dict[str, frozenset[str]] = {
    "billiard.semaphore_tracker": frozenset({"main"}),
    "billiard.forkserver": frozenset({"main"}),
    "billiard.spawn": frozenset({"spawn_main"}),
    "multiprocessing.resource_tracker": frozenset({"main"}),
    "multiprocessing.forkserver": frozenset({"main"}),
}


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


@dataclass(frozen=True)
class HelperCall:
    """`module.function(*args, **kwargs)`, parsed from a helper's `-c` command."""

    module: str
    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def resolve(self) -> Callable[..., Any]:
        function: Callable[..., Any] = getattr(importlib.import_module(self.module), self.function)
        return function


def _literal(node: ast.expr) -> Any:
    return ast.literal_eval(node)


def parse_helper_command(code: str) -> HelperCall | None:
    """The call in `from M import F; F(literal args)` for a known M and F, else None."""
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError:
        return None
    body = tree.body
    if len(body) != 2:
        return None
    imp, expr = body
    if not (isinstance(imp, ast.ImportFrom) and imp.level == 0 and imp.module in HELPER_FUNCTIONS):
        return None
    if len(imp.names) != 1 or imp.names[0].asname is not None:
        return None
    function = imp.names[0].name
    if function not in HELPER_FUNCTIONS[imp.module]:
        return None
    if not (isinstance(expr, ast.Expr) and isinstance(expr.value, ast.Call)):
        return None
    call = expr.value
    if not (isinstance(call.func, ast.Name) and call.func.id == function):
        return None
    try:
        args = tuple(_literal(a) for a in call.args if not isinstance(a, ast.Starred))
        if len(args) != len(call.args):
            return None
        kwargs: dict[str, Any] = {}
        for keyword in call.keywords:
            value = _literal(keyword.value)
            if keyword.arg is None:  # **{...}
                if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                    return None
                kwargs.update(value)
            else:
                kwargs[keyword.arg] = value
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return HelperCall(imp.module, function, args, kwargs)


def helper_call(argv: Sequence[str]) -> HelperCall | None:
    """The helper a `-c` command line asks for: `exe [interpreter flags] -c CODE [args]`."""
    if "-c" not in argv[1:]:
        return None
    index = list(argv).index("-c", 1)
    flags = argv[1:index]
    # Only interpreter flags may come before -c (subprocess._args_from_interpreter_flags).
    if any(not flag.startswith("-") for flag in flags) or index + 1 >= len(argv):
        return None
    return parse_helper_command(argv[index + 1])


def _billiard_fork_kwargs(argv: Sequence[str]) -> dict[str, int | None]:
    kwargs: dict[str, int | None] = {}
    for arg in argv[2:]:
        name, _, value = arg.partition("=")
        kwargs[name] = None if value == "None" else int(value)
    return kwargs


def run_helper_if_requested(argv: Sequence[str] | None = None, frozen: bool | None = None) -> None:
    """In a frozen executable, run the pool helper `argv` asks for and exit; else return.

    Call first thing in the frozen entry point, before anything reads the command line.
    """
    if not (is_frozen() if frozen is None else frozen):
        return
    args = list(sys.argv if argv is None else argv)
    if len(args) >= 2 and args[1] == MULTIPROCESSING_FORK:
        import multiprocessing

        sys.argv = args
        multiprocessing.freeze_support()  # PyInstaller's version runs the child and exits
        sys.exit(0)
    if len(args) >= 2 and args[1] == BILLIARD_FORK:
        from billiard.spawn import spawn_main

        sys.argv = args  # spawn_main asserts that the command line is a fork's
        spawn_main(**_billiard_fork_kwargs(args))
        sys.exit(0)
    call = helper_call(args)
    if call is None:
        return
    sys.argv = args[args.index("-c", 1) + 1 :]
    sys.argv[0] = "-c"
    result = call.resolve()(*call.args, **call.kwargs)
    sys.exit(result if isinstance(result, int) else 0)


def attach_missing_streams(log_dir: Path, role: str) -> Path | None:
    """Point a missing `sys.stdout`/`sys.stderr` at `<log_dir>/<role>.log`; its path, or None.

    A console-less Windows build starts with both streams None: the first `print`, or a worker
    writing its log, would fail. Streams that exist (a console, or pipes from the desktop app
    that reads its workers' output) are left alone.
    """
    if sys.stdout is not None and sys.stderr is not None:
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{role}.log"
    stream: TextIO = open(path, "a", encoding="utf-8", buffering=1, errors="backslashreplace")  # noqa: SIM115
    stream.write(f"--- pid {os.getpid()}: {' '.join(sys.argv[1:])}\n")
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return path

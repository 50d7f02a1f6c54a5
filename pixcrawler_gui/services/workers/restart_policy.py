"""When a crashed worker is started again, and when the supervisor gives up on it."""

from __future__ import annotations

import random
from dataclasses import dataclass

USAGE_ERROR_EXIT = 2  # the worker's command line was refused: restarting cannot help


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff with jitter; `max_crashes` crashes in a row end in the failed state.

    A worker that stayed up for `stable_after` seconds has its crash count reset, so a crash
    once a day never adds up to a failure.
    """

    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25  # the delay varies by up to this fraction either way
    max_crashes: int = 5
    stable_after: float = 60.0

    def delay(self, crashes: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number `crashes` (1 for the first crash)."""
        raw = min(self.max_delay, self.base_delay * self.factor ** max(crashes - 1, 0))
        spread = raw * self.jitter
        return max(0.0, raw + (rng or random).uniform(-spread, spread))

    def gives_up(self, crashes: int) -> bool:
        return crashes >= self.max_crashes


def crash_verdict(exit_code: int | None, crashed: bool, stop_requested: bool) -> str:
    """How to read a worker's exit: "stopped", "usage" (bad arguments) or "crashed"."""
    if stop_requested:
        return "stopped"
    if not crashed and exit_code == USAGE_ERROR_EXIT:
        return "usage"
    if not crashed and exit_code == 0:
        return "stopped"  # shut down on request from elsewhere (e.g. a remote control command)
    return "crashed"

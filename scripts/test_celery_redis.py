"""Verify the task system end to end: broker, backend, a task through a real worker, its result.

    uv run python scripts/test_celery_redis.py [--no-embedded]

Prints PASS or FAIL per check with timings and exits 0 only if all four pass. A temporary
worker is started when none answers (and stopped after); queues are never purged. When the
configured Redis is local and down, the embedded server is used (started for this run if it
is not already running); with --no-embedded it says how to start one instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixcrawler_gui.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["doctor", *sys.argv[1:]]))

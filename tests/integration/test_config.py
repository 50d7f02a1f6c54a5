"""CelerySettings: layering of files and environment, validation, saving, masking."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from celery_core.settings.celery_settings import CelerySettings, SettingsError, field_info
from celery_core.settings.file_settings import env_files


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_defaults_are_the_documented_ones() -> None:
    s = CelerySettings.load()
    assert s.broker_url == "redis://localhost:6379/0"
    assert s.result_backend == "redis://localhost:6379/1"
    assert (s.task_time_limit, s.task_soft_time_limit) == (1800, 1500)
    assert s.task_acks_late is True
    assert s.visibility_timeout > s.task_time_limit
    assert s.accept_content == ["json"]


def test_env_file_layering_and_environment_wins(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, dev = env_files("dev")
    write(base, "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=5\nPIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n")
    write(dev, "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=7\n")
    write(base.parent / ".env.prod", "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=9\n")
    s = CelerySettings.load()
    assert s.task_max_retries == 7  # .env.dev wins over .env
    assert s.result_expires == 3600  # .env still applies
    monkeypatch.setenv("PIXCRAWLER_ENV", "prod")
    assert CelerySettings.load().task_max_retries == 9
    monkeypatch.setenv("PIXCRAWLER_CELERY_TASK_MAX_RETRIES", "2")
    assert CelerySettings.load().task_max_retries == 2  # a real variable wins over files


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXCRAWLER_ENV", "production")
    with pytest.raises(SettingsError, match="dev, staging, prod"):
        CelerySettings.load()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"broker_url": "http://localhost:6379/0"}, "broker_url", "scheme 'http'"),
        ({"broker_url": "redis//localhost:6379/0"}, "broker_url", "scheme"),
        ({"result_backend": "redis://localhost:63a9/1"}, "result_backend", "port"),
        ({"task_soft_time_limit": 1800}, "task_soft_time_limit", "lower than task_time_limit"),
        ({"task_serializer": "pickle"}, "task_serializer", "pickle"),
        ({"accept_content": ["json", "pickle"]}, "accept_content", "pickle"),
        ({"visibility_timeout": 600}, "visibility_timeout", "greater than task_time_limit"),
        ({"worker_concurrency": -1}, "worker_concurrency", "greater than or equal"),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    changes: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(SettingsError) as info:
        CelerySettings.load().updated(**changes)
    assert field in str(info.value)
    assert words in str(info.value)


def test_bad_value_in_a_file_is_refused_naming_field_and_variable() -> None:
    write(env_files("dev")[1], "PIXCRAWLER_CELERY_TASK_SERIALIZER=pickle\n")
    with pytest.raises(SettingsError, match="PIXCRAWLER_CELERY_TASK_SERIALIZER"):
        CelerySettings.load()


def test_save_writes_only_changed_keys_and_keeps_the_rest() -> None:
    _, dev = env_files("dev")
    original = (
        "# my notes about this machine\n"
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n"
        "\n"
        "SOMETHING_ELSE=kept\n"
    )
    write(dev, original)
    s = CelerySettings.load()
    s.updated(task_time_limit=900, task_soft_time_limit=600).save()
    text = dev.read_text()
    assert text.startswith(original)  # comments, blank lines and unknown keys untouched
    added = text[len(original) :].splitlines()
    assert sorted(added) == [
        "PIXCRAWLER_CELERY_TASK_SOFT_TIME_LIMIT=600",
        "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=900",
    ]
    reloaded = CelerySettings.load()
    assert (reloaded.task_time_limit, reloaded.task_soft_time_limit) == (900, 600)
    assert reloaded.task_max_retries == 4


def test_save_replaces_an_existing_line_in_place() -> None:
    _, dev = env_files("dev")
    write(dev, "# top\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n# bottom\n")
    CelerySettings.load().updated(task_max_retries=6).save()
    assert dev.read_text() == "# top\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES=6\n# bottom\n"


def test_invalid_value_never_reaches_the_file() -> None:
    _, dev = env_files("dev")
    write(dev, "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")
    before = dev.read_bytes()
    s = CelerySettings.load()
    broken = s.model_copy(update={"task_soft_time_limit": 5000})  # skips validation on purpose
    with pytest.raises(SettingsError, match="task_soft_time_limit"):
        broken.save()
    assert dev.read_bytes() == before
    assert [p.name for p in dev.parent.iterdir()] == [dev.name]  # no temp file left behind


def test_file_with_a_password_is_private_and_repr_masks_it() -> None:
    s = CelerySettings.load().updated(broker_url="redis://:s3cret@localhost:6380/0")
    path = s.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret" not in repr(s)
    assert "s3cret" not in str(s.masked())
    assert CelerySettings.load().broker_url == "redis://:s3cret@localhost:6380/0"


def test_pool_is_chosen_per_os() -> None:
    s = CelerySettings.load()
    assert s.resolved_pool == ("threads" if sys.platform == "win32" else "prefork")
    assert s.updated(worker_pool="solo").resolved_pool == "solo"
    assert s.resolved_concurrency == (os.cpu_count() or 1)


def test_every_field_has_metadata_for_the_settings_screen() -> None:
    infos = field_info()
    assert {i.name for i in infos} == set(CelerySettings.model_fields)
    for info in infos:
        assert info.title and info.title != info.name, info.name
        assert len(info.description) > 20, info.name
        assert info.restart in ("worker", "app", "none"), info.name
        assert info.env_var == "PIXCRAWLER_CELERY_" + info.name.upper()
    assert next(i for i in infos if i.name == "worker_pool").choices == (
        "auto",
        "prefork",
        "threads",
        "solo",
    )


def test_importing_reads_nothing(tmp_path: Path) -> None:
    """A broken settings file must not break importing the settings or the app module."""
    config = tmp_path / "broken"
    write(config / ".env.dev", "PIXCRAWLER_CELERY_TASK_SERIALIZER=pickle\n")
    code = (
        "import celery_core.settings.celery_settings, celery_core.worker.app\n"
        "from celery_core.settings.celery_settings import CelerySettings, SettingsError\n"
        "try:\n    CelerySettings.load()\nexcept SettingsError as e:\n    print('refused:', e)\n"
    )
    env = {**os.environ, "PIXCRAWLER_CONFIG_DIR": str(config)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "refused: task_serializer" in out.stdout

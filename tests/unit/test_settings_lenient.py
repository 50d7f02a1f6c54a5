"""Loading settings leniently: a value that does not load gives way, and says where and why.

Also: saving never half-writes a file, and it repairs the lines no load can read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from celery_core.settings import envfile
from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.crawler_settings import CrawlerSettings
from celery_core.settings.file_settings import SettingsError, env_files, repair_file
from celery_core.settings.lenient import merge_problems
from pixcrawler_gui.services.settings_editor import SettingsEditor, settings_problems

CLASSES = (CelerySettings, CrawlerSettings)


def dev_file() -> Path:
    path = env_files("dev")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# (file bytes, settings class, field, value in use, words of the reason, line)
DAMAGE = {
    "word for a number": (
        b"# mine\nPIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n",
        CelerySettings,
        "task_time_limit",
        1800,
        "is not a whole number",
        2,
    ),
    "soft limit above the hard one": (
        b"PIXCRAWLER_CELERY_TASK_SOFT_TIME_LIMIT=5000\n",
        CelerySettings,
        "task_soft_time_limit",
        1500,
        "must be lower than “Hard time limit”",
        1,
    ),
    "a word in a list of networks": (
        b"PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8,my-nas\n",
        CrawlerSettings,
        "allowed_networks",
        [],
        "is not a network",
        1,
    ),
    "a JSON list that is not one": (
        b"PIXCRAWLER_CELERY_ACCEPT_CONTENT=[json\n",
        CelerySettings,
        "accept_content",
        ["json"],
        "is neither a comma-separated list nor a JSON list",
        1,
    ),
    "a line break inside a URL": (
        b"PIXCRAWLER_CELERY_BROKER_URL='redis://local\nhost:6379/0'\n",
        CelerySettings,
        "broker_url",
        "redis://localhost:6379/0",
        "contains a line break",
        1,
    ),
    "unknown choice": (
        b"PIXCRAWLER_CELERY_WORKER_POOL=gevent\n",
        CelerySettings,
        "worker_pool",
        "auto",
        "is not one of 'auto', 'prefork', 'threads' or 'solo'",
        1,
    ),
    "below the minimum": (
        b"PIXCRAWLER_CRAWLER_MAX_PER_HOST=0\n",
        CrawlerSettings,
        "max_per_host",
        6,
        "is below the lowest allowed value, 1",
        1,
    ),
    "line that is not KEY=VALUE": (
        b"PIXCRAWLER_CELERY_TASK_MAX_RETRIES 5\nPIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n",
        CelerySettings,
        "task_max_retries",
        3,
        "is not a setting (settings are written NAME=value)",
        1,
    ),
    "line that is not UTF-8": (
        b"PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\nPIXCRAWLER_CRAWLER_USER_AGENT=M\xfcller Bot\n",
        CrawlerSettings,
        "user_agent",
        CrawlerSettings().user_agent,
        "is not UTF-8 text",
        2,
    ),
}


@pytest.mark.parametrize("case", DAMAGE.values(), ids=list(DAMAGE))
def test_a_damaged_value_gives_way_and_is_reported_with_field_file_and_line(
    case: tuple[bytes, type[CelerySettings | CrawlerSettings], str, object, str, int],
) -> None:
    data, owner, field, in_use, words, line = case
    path = dev_file()
    path.write_bytes(data)
    loaded = owner.load_lenient()
    assert getattr(loaded.settings, field) == in_use
    [problem] = [p for p in loaded.problems if p.field == field]
    assert (problem.path, problem.line, problem.owner) == (path, line, owner.__name__)
    assert words in problem.reason
    assert problem.in_use is not None and problem.in_use.startswith("the default")
    text = problem.describe()
    assert problem.title and problem.title in text and str(path) in text and words in text
    log = problem.log_line()
    assert owner.env_var(field) in log and f"{path}, line {line}" in log and "\n" not in log
    if problem.kind == "value" or b"\xfc" in data:  # a strict load refuses it, saying where
        with pytest.raises(SettingsError, match=f"line {line}"):
            owner.load()


def test_the_other_values_of_a_damaged_file_still_apply() -> None:
    dev_file().write_bytes(
        b"PIXCRAWLER_CELERY_TASK_MAX_RETRIES=7\n"
        b"PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"
        b"garbage \xff line\n"
        b"PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n"
    )
    loaded = CelerySettings.load_lenient()
    assert (loaded.settings.task_max_retries, loaded.settings.result_expires) == (7, 3600)
    assert [(p.kind, p.line) for p in loaded.problems] == [("encoding", 3), ("value", 2)]


def test_a_refused_value_gives_way_to_a_lower_priority_file() -> None:
    base, dev = env_files("dev")
    dev.parent.mkdir(parents=True)
    base.write_text("PIXCRAWLER_CELERY_TASK_TIME_LIMIT=2400\n")
    dev.write_text("PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n")
    loaded = CelerySettings.load_lenient()
    assert loaded.settings.task_time_limit == 2400
    [problem] = loaded.problems
    assert problem.path == dev and problem.in_use == f"the value in {base} (2400 s)"


def test_a_damaged_environment_variable_gives_way_to_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev_file().write_text("PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")
    monkeypatch.setenv("PIXCRAWLER_CELERY_TASK_MAX_RETRIES", "many")
    loaded = CelerySettings.load_lenient()
    assert loaded.settings.task_max_retries == 4
    [problem] = loaded.problems
    assert problem.path is None and problem.line is None
    assert "environment variable PIXCRAWLER_CELERY_TASK_MAX_RETRIES" in problem.describe()
    assert problem.log_line().startswith("environment: PIXCRAWLER_CELERY_TASK_MAX_RETRIES='many'")


def test_an_unknown_environment_reads_the_dev_files(monkeypatch: pytest.MonkeyPatch) -> None:
    dev_file().write_text("PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")
    monkeypatch.setenv("PIXCRAWLER_ENV", "production")
    loaded = CelerySettings.load_lenient()
    assert loaded.settings.task_max_retries == 4
    [problem] = loaded.problems
    assert problem.kind == "environment" and "“production”" in problem.describe()
    assert "dev" in problem.describe()
    with pytest.raises(SettingsError, match="dev, staging, prod"):
        CelerySettings.load()  # strict stays strict


@pytest.mark.parametrize(
    "line",
    [
        "PIXCRAWLER_CELERY_BROKER_URL=http://:s3cret@db:6379/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND=redis://:s3cret@db:63a9/1",  # a port that is no number
        "PIXCRAWLER_CELERY_BROKER_URL redis://:s3cret@db:6379/0",  # not NAME=value
        "PIXCRAWLER_CRAWLER_PROXY_URL=socks5://u:s3cret@proxy:1080",
    ],
)
def test_a_password_in_a_refused_value_is_never_shown(line: str) -> None:
    dev_file().write_text(line + "\n")
    [problem] = settings_problems(CLASSES)
    assert "s3cret" not in problem.describe() + problem.log_line() + repr(problem)
    assert "s3cret" not in problem.summary()
    assert problem.raw is not None and "s3cret" in problem.raw  # the screen shows it, masked


def test_clean_files_load_the_same_as_a_strict_load(monkeypatch: pytest.MonkeyPatch) -> None:
    base, dev = env_files("dev")
    dev.parent.mkdir(parents=True)
    base.write_text(
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=5\nPIXCRAWLER_CRAWLER_ALLOWED_FORMATS=jpg\n"
    )
    dev.write_text(
        "export PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n"
        "PIXCRAWLER_CELERY_ACCEPT_CONTENT='[\"json\"]'\n"
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=10.0.0.0/8, 192.168.1.0/24\n"
        "PIXCRAWLER_CRAWLER_PROXY_URL=\n"
        "pixcrawler_crawler_max_per_host=3\n"
        'PIXCRAWLER_CRAWLER_USER_AGENT="Bot ${PIXCRAWLER_CELERY_RESULT_EXPIRES}"\n'
    )
    monkeypatch.setenv("PIXCRAWLER_CRAWLER_THUMBNAIL_SIZE", "200")
    for cls in CLASSES:
        loaded = cls.load_lenient()
        assert loaded.problems == ()
        assert loaded.settings.model_dump() == cls.load().model_dump()


def test_a_line_every_class_reads_is_reported_once_by_its_owner() -> None:
    dev_file().write_bytes(b"nonsense here\nPIXCRAWLER_CRAWLER_USER_AGENT=\xfc\n")
    problems = settings_problems(CLASSES)
    assert [(p.line, p.owner) for p in problems] == [(1, ""), (2, "CrawlerSettings")]
    assert merge_problems(problems, problems) == problems


# -- saving ----------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = dev_file()
    path.write_text("# mine\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")
    before = path.read_bytes()
    renames: list[tuple[str, str]] = []

    def refuse(src: str, dst: str) -> None:
        renames.append((src, dst))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(envfile.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        CelerySettings.load().updated(task_max_retries=6).save()
    assert path.read_bytes() == before
    [(src, dst)] = renames  # written beside it under a temporary name, then renamed over it
    assert Path(src).parent == path.parent and Path(src).name.startswith("..env.dev.")
    assert Path(src).name.endswith(".tmp")
    assert Path(dst) == path
    assert sorted(p.name for p in path.parent.iterdir()) == [".env.dev"]


def test_a_write_cut_short_leaves_the_old_file(monkeypatch: pytest.MonkeyPatch) -> None:
    path = dev_file()
    path.write_text("PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(envfile.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        CelerySettings.load().updated(task_max_retries=6).save()
    assert path.read_text() == "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=4\n"
    assert [p.name for p in path.parent.iterdir()] == [".env.dev"]


def test_saving_replaces_a_bad_line_and_keeps_unreadable_ones_as_comments() -> None:
    path = dev_file()
    path.write_bytes(
        b"# mine\n"
        b"PIXCRAWLER_CELERY_TASK_MAX_RETRIES 5\n"
        b"just words\n"
        b"# caf\xe9\n"
        b"PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n"
    )
    settings = CelerySettings.load_lenient().settings
    settings.updated(task_max_retries=5).save(rewrite=frozenset({"task_max_retries"}))
    assert path.read_text(encoding="utf-8") == (
        "# mine\n"
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=5\n"
        "# PixCrawler could not read this line (not a NAME=value setting): just words\n"
        "# PixCrawler could not read this line (not UTF-8 text): # caf\\xe9\n"
        "PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n"
    )
    assert CelerySettings.load().task_max_retries == 5
    assert settings_problems(CLASSES) == []


def test_rewriting_a_value_equal_to_the_one_in_use_replaces_the_bad_one() -> None:
    path = dev_file()
    path.write_text("PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n")
    settings = CelerySettings.load_lenient().settings  # 1800, the default
    settings.save()
    assert path.read_text() == "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"  # nothing asked
    settings.save(rewrite=frozenset({"task_time_limit"}))
    assert path.read_text() == "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=1800\n"


def test_bytes_that_are_not_utf8_survive_a_save_of_another_key(tmp_path: Path) -> None:
    path = tmp_path / "plain.env"
    path.write_bytes(b"OTHER=caf\xe9\n")
    envfile.update_env_file(path, {"KEY": "1"})
    assert path.read_bytes() == b"OTHER=caf\xe9\nKEY=1\n"
    assert repair_file(path) is True
    assert path.read_text() == (
        "# PixCrawler could not read this line (not UTF-8 text): OTHER=caf\\xe9\nKEY=1\n"
    )
    assert repair_file(path) is False


# -- the settings screen's logic -------------------------------------------------------------


def test_the_editor_opens_on_a_damaged_file_and_saving_corrects_it() -> None:
    path = dev_file()
    path.write_bytes(
        b"PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"
        b"PIXCRAWLER_CELERY_TASK_MAX_RETRIES 5\n"
        b"PIXCRAWLER_CELERY_WORKER_POOL=gevent\n"
    )
    editor = SettingsEditor(CLASSES)
    limit, retries, pool = (
        "CelerySettings.task_time_limit",
        "CelerySettings.task_max_retries",
        "CelerySettings.worker_pool",
    )
    assert editor.shown_text(limit) == "abc"  # the file's text, not a number
    assert editor.errors()[limit] == "“abc” is not a whole number"
    assert "PixCrawler uses the default (1800 s)" in (editor.problem_note(limit) or "")
    assert editor.value(retries) == 5 and retries not in editor.errors()  # readable after all
    assert "is not a setting" in (editor.problem_note(retries) or "")
    assert pool in editor.errors() and editor.value(pool) == "auto"
    assert not editor.can_save()

    editor.set(limit, 1800)  # the default, on purpose: the bad line must still go
    editor.set(pool, "solo")
    assert editor.can_save() and editor.problem_note(limit) is None
    editor.save()
    assert path.read_text() == (
        "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=1800\n"
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=5\n"
        "PIXCRAWLER_CELERY_WORKER_POOL=solo\n"
    )
    assert editor.problems == [] and editor.errors() == {}
    strict = CelerySettings.load()
    assert (strict.task_time_limit, strict.task_max_retries, strict.worker_pool) == (
        1800,
        5,
        "solo",
    )


def test_the_editor_can_save_just_to_repair_unreadable_lines() -> None:
    base, dev = env_files("dev")
    dev.parent.mkdir(parents=True)
    base.write_bytes(b"# caf\xe9\n")
    editor = SettingsEditor(CLASSES)
    assert [p.line for p in editor.notes()] == [1] and editor.repairs() == [base]
    assert editor.can_save() and editor.dirty() == []
    outcome = editor.save()
    assert outcome.files == (base,)
    assert base.read_text().startswith("# PixCrawler could not read this line")
    assert editor.notes() == [] and not editor.can_save()


def test_an_environment_variable_problem_is_a_note_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIXCRAWLER_CRAWLER_MAX_PER_HOST", "lots")
    editor = SettingsEditor(CLASSES)
    assert editor.errors() == {}
    [note] = editor.notes()
    assert note.path is None and note.env_var == "PIXCRAWLER_CRAWLER_MAX_PER_HOST"
    assert os.environ["PIXCRAWLER_CRAWLER_MAX_PER_HOST"] == "lots"

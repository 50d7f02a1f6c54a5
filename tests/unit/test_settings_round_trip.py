"""Every setting survives save then load; lists are comma-separated; passwords never show;
control characters are refused. Files only: no sockets, no processes."""

from __future__ import annotations

import stat
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest

from celery_core.settings.celery_settings import CelerySettings, field_info
from celery_core.settings.crawler_settings import CrawlerSettings
from celery_core.settings.file_settings import FileSettings, SettingsError, env_files
from celery_core.settings.redis_urls import mask_secrets, mask_url, url_has_password
from celery_core.settings.values import split_list

CLASSES: tuple[type[FileSettings], ...] = (CelerySettings, CrawlerSettings)
FIELDS = [(cls, name) for cls in CLASSES for name in cls.model_fields]
IDS = [f"{cls.__name__}.{name}" for cls, name in FIELDS]
# A password with a quote, a dollar, a hash (percent-encoded: it would end the URL), a
# backslash-free unicode letter: what a .env writer most easily gets wrong.
PASSWORD = "it's${HOME}%23wörd"
# Only one valid value: a non-default one cannot exist (pickle and friends are refused).
JSON_ONLY = {"task_serializer", "result_serializer", "accept_content"}


def _base(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _text_value(cls: type[FileSettings], name: str, example: str, default: Any) -> Any:
    """A valid, non-default text built from the field's example, with the awkward parts."""
    if name in ("broker_url", "result_backend"):
        db = 5 if name == "broker_url" else 6
        return f"redis://user:{PASSWORD}@redis.example:6380/{db}"
    if name == "proxy_url":
        return f"http://user:{PASSWORD}@proxy.example:3128"
    if name == "user_agent":
        return 'Bücherwurm/1.0 (+https://example.org/bot; "quoted" it\'s #1 $HOME)'
    if name.endswith("_base_url"):
        return "https://bücher.example/suche"
    assert example != default or name in JSON_ONLY, f"{name}: give it an example"
    return example


def value_for(cls: type[FileSettings], name: str) -> Any:
    """A valid value for `name` that differs from its default where any can."""
    info = next(i for i in field_info(cls) if i.name == name)
    base = _base(info.annotation)
    default = info.default
    if base is bool:
        return not default
    if get_origin(base) is Literal:
        return next(c for c in get_args(base) if c != default)
    if base in (int, float):
        step = 1 if base is int else 0.25
        for candidate in (default + step, default - step, info.minimum, info.maximum):
            if candidate is None or candidate == default:
                continue
            try:
                cls(_env_file=None).updated(**{name: candidate})
            except SettingsError:
                continue
            return candidate
        raise AssertionError(f"no valid non-default value for {name}")
    if get_origin(base) is list:
        if name == "allowed_networks":
            return ["127.0.0.0/8", "192.168.1.0/24", "fd00::/8"]
        if name == "allowed_formats":
            return ["PNG", "TIFF"]
        assert info.example is not None, f"{name}: give it an example"
        return split_list(info.example)
    assert info.example is not None, f"{name}: give it an example"
    return _text_value(cls, name, info.example, default)


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=IDS)
def test_every_field_survives_save_then_load(cls: type[FileSettings], name: str) -> None:
    value = value_for(cls, name)
    changed = cls.load().updated(**{name: value})
    assert getattr(changed, name) == value or name in JSON_ONLY
    path = changed.save(rewrite=frozenset({name}))
    assert cls.env_var(name) in path.read_text(encoding="utf-8")
    again = cls.load()  # strict: refuses what it cannot read
    assert getattr(again, name) == getattr(changed, name)
    assert again == changed


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_all_fields_at_once_survive_save_then_load(cls: type[FileSettings]) -> None:
    values = {name: value_for(cls, name) for name in cls.model_fields}
    if cls is CelerySettings:  # the limits depend on each other: keep them in order
        values |= {"task_soft_time_limit": 1499, "task_time_limit": 1801}
    changed = cls.load().updated(**values)
    changed.save(rewrite=frozenset(values))
    assert cls.load() == changed


def test_lists_are_written_comma_separated() -> None:
    path = CrawlerSettings.load().updated(allowed_networks=["127.0.0.0/8"]).save()
    assert "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8\n" in path.read_text()
    path = CrawlerSettings.load().updated(allowed_formats=["png", "gif"]).save()
    assert "PIXCRAWLER_CRAWLER_ALLOWED_FORMATS=PNG,GIF\n" in path.read_text()
    assert CrawlerSettings.load().allowed_networks == ["127.0.0.0/8"]


def test_lists_saved_as_json_by_earlier_versions_still_load() -> None:
    path = env_files("dev")[1]
    path.parent.mkdir(parents=True)
    path.write_text(
        'PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=\'["127.0.0.0/8", "10.0.0.0/8"]\'\n'
        'PIXCRAWLER_CRAWLER_ALLOWED_FORMATS=\'["PNG", "GIF"]\'\n'
        "PIXCRAWLER_CELERY_ACCEPT_CONTENT='[\"json\"]'\n"
    )
    crawler = CrawlerSettings.load()
    assert crawler.allowed_networks == ["127.0.0.0/8", "10.0.0.0/8"]
    assert crawler.allowed_formats == ["PNG", "GIF"]
    assert CelerySettings.load().accept_content == ["json"]


def test_accept_content_reads_comma_separated_text() -> None:
    assert CelerySettings.load().updated(accept_content="json").accept_content == ["json"]
    with pytest.raises(SettingsError, match="pickle"):
        CelerySettings.load().updated(accept_content="json, pickle")


QUERY_URL = "redis://redis.example:6379/0?password=s3cr%40t"


def test_a_query_password_is_moved_before_the_at_and_masked() -> None:
    settings = CelerySettings.load().updated(broker_url=QUERY_URL)
    # the form kombu reads: a password given twice breaks it
    assert settings.broker_url == "redis://:s3cr%40t@redis.example:6379/0"
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings.masked())
    path = settings.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CelerySettings.load().broker_url == settings.broker_url


def test_a_file_holding_a_query_password_is_made_private() -> None:
    path = env_files("dev")[1]
    path.parent.mkdir(parents=True)
    path.write_text("PIXCRAWLER_CRAWLER_BING_BASE_URL=https://bing.example/?password=x\n")
    path.chmod(0o644)
    CrawlerSettings.load().updated(max_retries=4).save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "url",
    [QUERY_URL, "redis://user:s3cr%40t@h:1/0", "unix:///run/r.sock?db=1&password=s3cr%40t"],
)
def test_passwords_are_masked_in_every_form(url: str) -> None:
    assert url_has_password(url)
    assert "s3cr" not in mask_url(url)
    assert "s3cr" not in mask_secrets(f"could not reach {url}: refused")


def test_two_different_passwords_are_refused() -> None:
    with pytest.raises(SettingsError, match="two different passwords"):
        CelerySettings.load().updated(broker_url="redis://:a@h:1/0?password=b")


TEXT_FIELDS = [
    (cls, name)
    for cls, name in FIELDS
    if _base(cls.model_fields[name].annotation) is str
    or get_origin(_base(cls.model_fields[name].annotation)) is list
]


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00", "\x7f", "\x85"])
@pytest.mark.parametrize(
    ("cls", "name"), TEXT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in TEXT_FIELDS]
)
def test_control_characters_are_refused_in_every_text_field(
    cls: type[FileSettings], name: str, char: str
) -> None:
    value = value_for(cls, name)
    if isinstance(value, list):
        broken: Any = [value[0][:3] + char + value[0][3:], *value[1:]]
    else:
        broken = value[:9] + char + value[9:]
    with pytest.raises(SettingsError, match=rf"{name}.*(control character|line break|"
                       "carriage return|tab|NUL)"):  # fmt: skip
        cls.load().updated(**{name: broken})


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        ("Bot/1.0\r\nX-Injected: 1", "carriage return"),
        ("Bot/1.0 ☃", "cannot be sent in an HTTP header"),
        ("Bot/1.0\x1b[31m", r"control character U\+001B"),
    ],
)
def test_the_user_agent_must_be_a_header_value(agent: str, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        CrawlerSettings.load().updated(user_agent=agent)


def test_every_text_and_list_field_has_a_valid_example() -> None:
    for cls in CLASSES:
        for info in field_info(cls):
            base = _base(info.annotation)
            if base is str or get_origin(base) is list:
                assert info.example, f"{cls.__name__}.{info.name} has no example"
                value = split_list(info.example) if get_origin(base) is list else info.example
                cls.load().updated(**{info.name: value})  # the placeholder is a valid value


def test_saved_value_of_every_field_lands_in_the_isolated_dir(isolated_dirs: Path) -> None:
    path = CrawlerSettings.load().updated(max_retries=4).save()
    assert path.is_relative_to(isolated_dirs)


def test_placeholders_come_from_each_fields_own_example() -> None:
    from pixcrawler_gui.services.settings_editor import describe_fields, placeholder

    fields = {f.key: f for f in describe_fields(CLASSES)}
    networks = placeholder(fields["CrawlerSettings.allowed_networks"])
    assert networks == "Comma-separated, e.g. 127.0.0.0/8, 192.168.1.0/24"
    assert placeholder(fields["CrawlerSettings.allowed_formats"]).endswith("JPEG, PNG, WEBP")
    assert placeholder(fields["CrawlerSettings.proxy_url"]).startswith("Not set (e.g. http://")
    texts = [f for f in fields.values() if f.kind in ("text", "secret", "list")]
    assert len({placeholder(f) for f in texts}) > len(texts) // 2  # not one shared hint


def test_field_names_are_unique_over_both_classes() -> None:
    """`pixcrawler settings set NAME` and `show --json` key by field name alone."""
    assert not set(CelerySettings.model_fields) & set(CrawlerSettings.model_fields)


def test_the_cli_finds_a_key_with_or_without_its_prefix() -> None:
    from pixcrawler_gui.cli.settings import find_field

    assert find_field("allowed_networks") == (CrawlerSettings, "allowed_networks")
    assert find_field("PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS") == (
        CrawlerSettings,
        "allowed_networks",
    )
    assert find_field("pixcrawler_celery_accept_content") == (CelerySettings, "accept_content")
    assert find_field("PIXCRAWLER_CELERY_ALLOWED_NETWORKS") is None
    assert find_field("no_such") is None


def test_test_connection_tests_the_own_redis_the_app_runs_on() -> None:
    from celery_core.redis_server.connection import Endpoints
    from celery_core.redis_server.state import ServerInfo
    from pixcrawler_gui.services.runtime import AppServices

    info = ServerInfo("127.0.0.1", 40123, "pw", 1, "redis-server", "/tmp")
    services = AppServices.__new__(AppServices)  # only what _effective_url reads
    services.settings = CelerySettings.load()
    services.endpoints = Endpoints(info.url(0), info.url(1), info)
    assert services._effective_url("broker", "redis://localhost:6379/0") == info.url(0)
    assert services._effective_url("backend", "redis://localhost:6379/1") == info.url(1)
    assert services._effective_url("broker", "redis://other:6379/0") is None  # as typed
    services.endpoints = Endpoints("redis://localhost:6379/0", "redis://localhost:6379/1", None)
    assert services._effective_url("broker", "redis://localhost:6379/0") is None

"""CrawlerSettings: env prefix, files shared with CelerySettings, validation, screen metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from celery_core.settings.celery_settings import field_info
from celery_core.settings.crawler_settings import DEFAULT_USER_AGENT, CrawlerSettings
from celery_core.settings.file_settings import SettingsError


def test_defaults_are_safe() -> None:
    settings = CrawlerSettings.load()
    assert settings.allow_private_networks is False
    assert settings.respect_robots is True
    assert settings.user_agent == DEFAULT_USER_AGENT
    assert settings.max_redirects == 5
    assert settings.proxy_url is None
    assert settings.allowed_formats == ["JPEG", "PNG", "WEBP", "GIF", "BMP"]
    assert settings.bing_base_url == "https://www.bing.com"


def test_reads_the_same_env_files_with_its_own_prefix(
    isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = isolated_dirs / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / ".env").write_text(
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=7\n"
        "PIXCRAWLER_CRAWLER_MAX_RETRIES=4\n"
        "PIXCRAWLER_CRAWLER_ALLOWED_FORMATS=jpg, webp\n"
    )
    (config / ".env.dev").write_text("PIXCRAWLER_CRAWLER_THUMBNAIL_SIZE=200\n")
    monkeypatch.setenv("PIXCRAWLER_CRAWLER_BING_BASE_URL", "http://127.0.0.1:9999/")
    settings = CrawlerSettings.load()
    assert settings.max_retries == 4
    assert settings.allowed_formats == ["JPEG", "WEBP"]
    assert settings.thumbnail_size == 200
    assert settings.bing_base_url == "http://127.0.0.1:9999"


def test_save_round_trip(isolated_dirs: Path) -> None:
    changed = CrawlerSettings.load().updated(allowed_formats=["png", "GIF"], max_per_host=2)
    path = changed.save()
    assert "PIXCRAWLER_CRAWLER_MAX_PER_HOST=2" in path.read_text()
    again = CrawlerSettings.load()
    assert again.allowed_formats == ["PNG", "GIF"] and again.max_per_host == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"proxy_url": "socks5://127.0.0.1:1080"}, "proxy"),
        ({"allowed_formats": ["JPEG", "PSD"]}, "PSD"),
        ({"allowed_formats": []}, "at least one"),
        ({"max_redirects": -1}, "max_redirects"),
        ({"google_base_url": "file:///etc"}, "google_base_url"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(change: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        CrawlerSettings.load().updated(**change)


def test_proxy_password_never_shows() -> None:
    settings = CrawlerSettings.load().updated(proxy_url="http://user:s3cret@proxy:3128")
    assert "s3cret" not in repr(settings)
    assert settings.masked()["proxy_url"] == "http://user:***@proxy:3128"


def test_every_field_describes_itself_for_the_settings_screen() -> None:
    infos = field_info(CrawlerSettings)
    names = {info.name for info in infos}
    assert {"allow_private_networks", "user_agent", "proxy_url", "max_connections",
            "max_per_host", "connect_timeout", "read_timeout", "total_timeout", "max_retries",
            "max_redirects", "max_image_bytes", "max_page_bytes", "max_pixels", "allowed_formats",
            "thumbnail_size", "respect_robots", "bing_base_url", "duckduckgo_base_url",
            "google_base_url", "baidu_base_url"} <= names  # fmt: skip
    for info in infos:
        assert info.title and info.description and info.group
        assert info.restart in ("worker", "none")
        assert info.env_var == "PIXCRAWLER_CRAWLER_" + info.name.upper()
    assert next(i for i in infos if i.name == "proxy_url").secret

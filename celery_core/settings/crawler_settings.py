"""`CrawlerSettings`: how the crawl engine downloads, checks and keeps images.

Same files and lookup order as `CelerySettings` (see `celery_core.settings.file_settings`), with
the env prefix `PIXCRAWLER_CRAWLER_`. Each field carries the metadata the settings screen is
generated from: title, description, group and `restart`. Every crawl task reads these settings
when it starts (`CrawlerSettings.load()` is cheap), so a change applies to the next crawl and
needs no restart ("none").
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from celery_core.settings.file_settings import FileSettings, field_meta
from celery_core.settings.redis_urls import mask_url
from celery_core.settings.values import check_header_value, split_list

__all__ = ["DEFAULT_USER_AGENT", "KNOWN_FORMATS", "CrawlerSettings"]

Restart = Literal["worker", "app", "none"]

DEFAULT_USER_AGENT = "PixCrawler/0.1 (+https://github.com/pixcrawler; image dataset builder)"
# Pillow format names the checks can recognise by their magic bytes.
KNOWN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF"}
_MB = 1024 * 1024


class CrawlerSettings(FileSettings):
    """Settings of the crawl engine (env prefix `PIXCRAWLER_CRAWLER_`)."""

    model_config = SettingsConfigDict(
        env_prefix="PIXCRAWLER_CRAWLER_",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )
    env_prefix_name: ClassVar[str] = "PIXCRAWLER_CRAWLER_"

    # --- Network safety -------------------------------------------------------------------
    allow_private_networks: bool = Field(
        False,
        title="Allow private networks",
        description="Let crawls download from loopback, LAN, link-local and cloud metadata "
        "addresses. Off by default: a web page could otherwise point the crawler at machines "
        "on your own network.",
        json_schema_extra=field_meta("Network safety"),
    )
    allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        title="Private networks allowed anyway",
        description="Comma-separated networks the crawler may reach even though they are "
        "private, e.g. 192.168.1.0/24 for a NAS, or 127.0.0.0/8 for a site on this computer. "
        "Narrower than allowing all private networks.",
        json_schema_extra=field_meta("Network safety", example="127.0.0.0/8, 192.168.1.0/24"),
    )
    respect_robots: bool = Field(
        True,
        title="Respect robots.txt",
        description="Skip pages and images that a site's robots.txt disallows for this crawler.",
        json_schema_extra=field_meta("Network safety"),
    )
    user_agent: str = Field(
        DEFAULT_USER_AGENT,
        min_length=3,
        max_length=300,
        title="User-Agent",
        description="How the crawler introduces itself to web servers; robots.txt rules are "
        "matched against it. Sent as an HTTP header: ASCII (or Latin-1) text on one line.",
        json_schema_extra=field_meta(
            "Network safety", example="MyDatasetBot/1.0 (+https://example.org/bot)"
        ),
    )
    proxy_url: str | None = Field(
        None,
        title="HTTP proxy",
        description="Send all downloads through this proxy, e.g. http://user:pass@host:3128. "
        "Empty: connect directly.",
        json_schema_extra=field_meta(
            "Connection", secret=True, example="http://user:pass@proxy.example:3128"
        ),
    )

    # --- Connection -----------------------------------------------------------------------
    max_connections: int = Field(
        32,
        ge=1,
        le=1024,
        title="Downloads at once",
        description="Open connections per crawl task, over all sites together.",
        json_schema_extra=field_meta("Connection"),
    )
    max_per_host: int = Field(
        6,
        ge=1,
        le=256,
        title="Downloads at once per site",
        description="Open connections to one site at the same time; keep low to be polite.",
        json_schema_extra=field_meta("Connection"),
    )
    connect_timeout: float = Field(
        10.0,
        ge=0.05,
        le=300,
        title="Connect timeout (s)",
        description="Give up on a server that does not accept the connection within this time.",
        json_schema_extra=field_meta("Connection", unit="seconds"),
    )
    read_timeout: float = Field(
        20.0,
        ge=0.05,
        le=600,
        title="Read timeout (s)",
        description="Give up when a server sends nothing for this long.",
        json_schema_extra=field_meta("Connection", unit="seconds"),
    )
    total_timeout: float = Field(
        60.0,
        ge=0.1,
        le=3600,
        title="Total timeout per download (s)",
        description="Longest time one download attempt may take, however slowly data arrives.",
        json_schema_extra=field_meta("Connection", unit="seconds"),
    )
    max_retries: int = Field(
        2,
        ge=0,
        le=10,
        title="Retries per download",
        description="Retries after HTTP 429, 5xx, a timeout or a dropped connection. Other "
        "errors (404, not an image, too large) are not retried.",
        json_schema_extra=field_meta("Connection"),
    )
    retry_backoff: float = Field(
        0.5,
        ge=0,
        le=60,
        title="First retry delay (s)",
        description="Wait before the first retry; each later one waits twice as long, with "
        "jitter. A server's Retry-After is honoured up to the longest wait below.",
        json_schema_extra=field_meta("Connection", advanced=True, unit="seconds"),
    )
    max_retry_wait: float = Field(
        30.0,
        ge=0,
        le=600,
        title="Longest retry wait (s)",
        description="Upper bound on the wait before a retry, including a server's Retry-After.",
        json_schema_extra=field_meta("Connection", advanced=True, unit="seconds"),
    )
    max_redirects: int = Field(
        5,
        ge=0,
        le=30,
        title="Redirects to follow",
        description="A download redirected more often than this fails.",
        json_schema_extra=field_meta("Connection", advanced=True),
    )

    # --- Images ---------------------------------------------------------------------------
    max_image_bytes: int = Field(
        20 * _MB,
        ge=1024,
        le=1024 * _MB,
        title="Largest image file (bytes)",
        description="Larger downloads are stopped and refused.",
        json_schema_extra=field_meta("Images", unit="bytes"),
    )
    max_page_bytes: int = Field(
        5 * _MB,
        ge=1024,
        le=256 * _MB,
        title="Largest web page (bytes)",
        description="Search result and website pages are cut at this size.",
        json_schema_extra=field_meta("Images", advanced=True, unit="bytes"),
    )
    max_pixels: int = Field(
        40_000_000,
        ge=10_000,
        le=170_000_000,  # Pillow refuses images over about 179 Mpx whatever is set here
        title="Most pixels per image",
        description="Images with more pixels (width x height, read from the file header before "
        "decoding) are refused: protects memory against decompression bombs.",
        json_schema_extra=field_meta("Images"),
    )
    decode_memory_mb: int = Field(
        0,
        ge=0,
        le=1024 * 1024,
        title="Decode memory per worker process (MB)",
        description="Memory the image checks of one worker process may use for decoding at "
        "once, estimated from each file's header before decoding. Images wait their turn for "
        "it; one needing more than all of it is refused as too_large_to_decode. 0: automatic, "
        "a 64th of this computer's memory for the whole worker (at most 160 MB) shared by its "
        "pool processes, at least 32 MB each. Raise it to keep very large pictures.",
        json_schema_extra=field_meta("Images", unit="megabytes"),
    )
    allowed_formats: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["JPEG", "PNG", "WEBP", "GIF", "BMP"],
        title="Image formats to keep",
        description=f"Formats recognised by their content, comma-separated: "
        f"{', '.join(KNOWN_FORMATS)}.",
        json_schema_extra=field_meta("Images", example="JPEG, PNG, WEBP"),
    )
    thumbnail_size: int = Field(
        160,
        ge=32,
        le=512,
        title="Thumbnail size (px)",
        description="Longest side of the previews sent to the control panel while a crawl runs.",
        json_schema_extra=field_meta("Images"),
    )
    cpu_workers: int = Field(
        0,
        ge=0,
        le=256,
        title="Image check threads",
        description="Threads that decode, hash and shrink images for one crawl task; 0 means "
        "one per CPU core.",
        json_schema_extra=field_meta("Images", advanced=True),
    )

    # --- Search engines -------------------------------------------------------------------
    bing_base_url: str = Field(
        "https://www.bing.com",
        title="Bing address",
        description="Base URL of Bing image search.",
        json_schema_extra=field_meta(
            "Search engines", advanced=True, example="https://www.bing.com"
        ),
    )
    duckduckgo_base_url: str = Field(
        "https://duckduckgo.com",
        title="DuckDuckGo address",
        description="Base URL of DuckDuckGo image search.",
        json_schema_extra=field_meta(
            "Search engines", advanced=True, example="https://duckduckgo.com"
        ),
    )
    google_base_url: str = Field(
        "https://www.google.com",
        title="Google address",
        description="Base URL of Google image search.",
        json_schema_extra=field_meta(
            "Search engines", advanced=True, example="https://www.google.com"
        ),
    )
    baidu_base_url: str = Field(
        "https://image.baidu.com",
        title="Baidu address",
        description="Base URL of Baidu image search.",
        json_schema_extra=field_meta(
            "Search engines", advanced=True, example="https://image.baidu.com"
        ),
    )

    @field_validator("proxy_url", mode="before")
    @classmethod
    def _check_proxy(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            return value
        value = value.strip()
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(f"{mask_url(value)!r} is not an http:// or https:// proxy URL")
        return value

    @field_validator("bing_base_url", "duckduckgo_base_url", "google_base_url", "baidu_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("user_agent")
    @classmethod
    def _check_user_agent(cls, value: str) -> str:
        return check_header_value(value)

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        value = split_list(value)  # comma-separated; a JSON list from earlier files too
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError:
                    raise ValueError(
                        f"{item!r} is not a network; use an address or CIDR like 10.0.0.0/8"
                    ) from None
        return value

    @field_validator("allowed_formats", mode="before")
    @classmethod
    def _split_formats(cls, value: object) -> object:
        # Comma-separated ("JPEG,PNG"); files saved by earlier versions hold a JSON list.
        return split_list(value)

    @field_validator("allowed_formats")
    @classmethod
    def _check_formats(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for item in value:
            name = item.strip().upper()
            name = _FORMAT_ALIASES.get(name, name)
            if name not in KNOWN_FORMATS:
                raise ValueError(f"unknown image format {item!r}; use {', '.join(KNOWN_FORMATS)}")
            if name not in cleaned:
                cleaned.append(name)
        if not cleaned:
            raise ValueError("at least one image format must be allowed")
        return cleaned

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name == "proxy_url" and isinstance(value, str):
                yield name, mask_url(value)
            else:
                yield name, value

    def masked(self) -> dict[str, Any]:
        """All values as a dict with the proxy password masked: safe for logs and results."""
        data = self.model_dump()
        if data["proxy_url"]:
            data["proxy_url"] = mask_url(data["proxy_url"])
        return data

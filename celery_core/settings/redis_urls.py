"""Redis URL checks and masking, so passwords never reach a log, a repr or a task result."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", ""})
# Any scheme: a proxy (socks5://, http://) or a broker URL may carry a password.
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s/@:]*):([^\s/@]+)@")


def check_redis_url(url: str) -> str:
    """Return `url` unchanged if it is a usable Redis URL, else raise ValueError saying why."""
    parts = urlsplit(url.strip())
    if parts.scheme not in REDIS_SCHEMES:
        shown = parts.scheme or "(none)"
        raise ValueError(
            f"scheme {shown!r} is not supported; use redis://, rediss:// or unix:// "
            f"(for example redis://localhost:6379/0)"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs a socket path, e.g. unix:///run/redis.sock")
        return url.strip()
    if not parts.hostname:
        raise ValueError("the URL has no host; e.g. redis://localhost:6379/0")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"the port is not a number between 0 and 65535 ({exc})") from None
    if port == 0:
        raise ValueError("port 0 is not a port a server listens on")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the database number {db!r} must be a whole number, e.g. /0")
    return url.strip()


def mask_url(url: str) -> str:
    """`redis://:secret@host:6379/0` -> `redis://:***@host:6379/0`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_secrets(text: str) -> str:
    """Mask every password in URLs found anywhere in `text`."""
    return _URL_IN_TEXT.sub(lambda m: f"{m.group(1)}://{m.group(2)}:***@", text)


def url_has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return False


def is_local_url(url: str) -> bool:
    """True for a Redis URL on this machine (loopback host or a unix socket)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(SplitResult(parts.scheme, parts.netloc, f"/{db}", parts.query, ""))

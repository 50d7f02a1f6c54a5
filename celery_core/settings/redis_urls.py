"""Redis URL checks and masking, so passwords never reach a log, a repr or a task result."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", ""})
# Any scheme: a proxy (socks5://, http://) or a broker URL may carry a password.
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s/@:]*):([^\s/@]+)@")
# A password as a query parameter (redis://host:6379/0?password=secret, which redis-py reads).
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pass)=)[^&#\s'\"]*", re.IGNORECASE)
_PASSWORD_KEYS = ("password", "passwd", "pass")


def _query_password(query: str) -> str | None:
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in _PASSWORD_KEYS and value:
            return value
    return None


def normalize_redis_url(url: str) -> str:
    """`redis://host:6379/0?password=s` -> `redis://:s@host:6379/0`: the one form every client
    reads (kombu, Celery's broker, fails on a password given twice). A `?username=` moves too.
    Raises ValueError when the URL holds two different passwords."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    moved = {k.lower(): v for k, v in pairs if k.lower() in ("password", "username")}
    if not moved:
        return url
    password, username = moved.get("password", ""), moved.get("username", "")
    if parts.password and password and parts.password != password:
        raise ValueError("the URL has two different passwords (before the @ and ?password=)")
    if parts.username and username and parts.username != username:
        raise ValueError("the URL has two different user names (before the @ and ?username=)")
    user = parts.username or quote(username, safe="")
    secret = parts.password or quote(password, safe="")
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{secret}@{host}" if secret else (f"{user}@{host}" if user else host)
    query = urlencode([(k, v) for k, v in pairs if k.lower() not in ("password", "username")])
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


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
    """`redis://:secret@host:6379/0` -> `redis://:***@host:6379/0`; a `?password=` is masked
    the same way."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (e.g. a bad IPv6 host): mask whatever looks like a password
        return mask_secrets(url)
    if _query_password(parts.query):
        url = _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}***", url)
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
    """Mask every password in URLs found anywhere in `text` (`user:pass@` and `?password=`)."""
    text = _URL_IN_TEXT.sub(lambda m: f"{m.group(1)}://{m.group(2)}:***@", text)
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}***", text)


def url_has_password(url: str) -> bool:
    """Whether `url` holds a password, as `user:pass@` or as `?password=`."""
    try:
        parts = urlsplit(url)
        return bool(parts.password) or _query_password(parts.query) is not None
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


def url_target(url: str) -> str:
    """Where a Redis URL points, for people: `host:port`, or the socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"

"""robots.txt rules per site, fetched once and cached, interpreted as RFC 9309 says.

- 2xx: the file's rules apply (parsed by protego, which understands `*` and `$`);
- 4xx ("unavailable"): everything is allowed;
- 5xx or unreachable: everything is disallowed, since the site may be overloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

# RFC 9309: crawlers must parse at least 500 KiB.
MAX_ROBOTS_BYTES = 512 * 1024


@dataclass(frozen=True)
class RobotsResponse:
    """What fetching `/robots.txt` gave: `status` 0 means unreachable."""

    status: int
    text: str = ""


RobotsLoader = Callable[[str], Awaitable[RobotsResponse]]


class _Rules:
    def __init__(self, parser: Protego | None, allow_all: bool) -> None:
        self.parser = parser
        self.allow_all = allow_all

    def allows(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, user_agent))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class RobotsCache:
    """Answers "may this URL be fetched?" with one robots.txt request per origin."""

    def __init__(self, load: RobotsLoader, user_agent: str) -> None:
        self._load = load
        self._user_agent = user_agent
        self._rules: dict[str, _Rules] = {}
        self._pending: dict[str, asyncio.Event] = {}

    async def allowed(self, url: str) -> bool:
        if urlsplit(url).path == "/robots.txt":
            return True
        origin = origin_of(url)
        while True:
            rules = self._rules.get(origin)
            if rules is not None:
                return rules.allows(url, self._user_agent)
            pending = self._pending.get(origin)
            if pending is None:
                break
            # Another download from this site is fetching the file: wait, then look again
            # (if that download was cancelled, this one fetches the file itself).
            await pending.wait()
        done = asyncio.Event()
        self._pending[origin] = done
        try:
            rules = _interpret(await self._load(f"{origin}/robots.txt"))
            self._rules[origin] = rules
        finally:
            del self._pending[origin]
            done.set()
        return rules.allows(url, self._user_agent)


def _interpret(response: RobotsResponse) -> _Rules:
    if 200 <= response.status < 300:
        try:
            return _Rules(Protego.parse(response.text), allow_all=True)
        except Exception:  # a garbled file is treated as having no rules
            return _Rules(None, allow_all=True)
    if 400 <= response.status < 500:
        return _Rules(None, allow_all=True)
    return _Rules(None, allow_all=False)

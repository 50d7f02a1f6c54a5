"""Why a keyword's sources delivered nothing, in plain words with the next step to take.

The engine records each failed source as "<source>: <reason>" (`Counts.source_errors`; the
reasons are `crawler/search/engine_base.py`'s and the fetcher's codes). One pure function puts
them into words for the Jobs page, notifications and `pixcrawler crawl`."""

from __future__ import annotations

import re
from collections.abc import Iterable

SOURCE_NAMES = {
    "bing": "Bing",
    "duckduckgo": "DuckDuckGo",
    "google": "Google",
    "baidu": "Baidu",
    "website": "the website",
    "urls": "the URL list",
}

# Reasons that mean the network (or the name lookup) is missing, not the engine.
_OFFLINE = frozenset({"dns_error", "connection_error", "network_error"})


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)


def parse_source_error(error: str) -> tuple[str, str]:
    """("bing", "dns_error") from "bing: dns_error"; a message of another shape is its own
    reason with no source."""
    source, sep, reason = error.partition(": ")
    if not sep or " " in source:
        return "", error.strip()
    return source.strip(), reason.strip()


def _names(sources: list[str]) -> str:
    names = [source_name(s) for s in sources]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _reason_text(reason: str, sources: list[str]) -> str:
    who = _names(sources)
    both = " and ".join(source_name(s) for s in sources)
    plural = len(sources) > 1
    if reason in _OFFLINE:
        return f"Couldn't reach {who}: is this computer online?"
    if reason == "timeout":
        return f"{_capital(both)} didn't answer in time: check the connection, or try again later"
    if reason == "tls_error":
        return (
            f"Couldn't make a secure connection to {who}: check this computer's clock, "
            "or a proxy or antivirus that inspects traffic"
        )
    if reason == "blocked":
        return (
            f"{_capital(both)} asked for a captcha (took this computer for a robot): "
            "wait an hour, or use another search engine"
        )
    if reason == "no_results":
        return f"{_capital(both)} found no images for this keyword: try other words"
    if reason == "markup_changed":
        pages = "pages" if plural else "page"
        return (
            f"{_capital(both)} changed the layout of {'their' if plural else 'its'} result "
            f"{pages}, which this version can't read: update PixCrawler or use another engine"
        )
    if reason == "unknown_engine":
        return f"{_capital(who)}: not a search engine this version knows"
    if reason == "robots_disallowed":
        return f"{_capital(who)} forbids crawling in its robots.txt"
    if reason == "private_address":
        return (
            f"{_capital(who)} is on a private network address, which the settings don't "
            "allow crawling"
        )
    status = re.fullmatch(r"http_(\d{3})", reason)
    if status:
        code = int(status.group(1))
        if code >= 500:
            return f"{_capital(both)} had a server error (HTTP {code}): try again later"
        return f"{_capital(both)} answered HTTP {code}"
    return f"{_capital(both)}: {reason.replace('_', ' ')}" if sources else reason


def source_problem_text(errors: Iterable[str]) -> str | None:
    """All of a keyword's source errors as one sentence per reason, e.g. ["bing: dns_error",
    "duckduckgo: dns_error"] -> "Couldn't reach Bing or DuckDuckGo: is this computer online?".
    None when there are none."""
    by_reason: dict[str, list[str]] = {}
    for error in errors:
        source, reason = parse_source_error(error)
        if reason in _OFFLINE:
            reason = "dns_error"  # one sentence for every way of being offline
        sources = by_reason.setdefault(reason, [])
        if source and source not in sources:
            sources.append(source)
    if not by_reason:
        return None
    return ". ".join(_reason_text(reason, sources) for reason, sources in by_reason.items())

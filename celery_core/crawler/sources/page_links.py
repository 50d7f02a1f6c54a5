"""Reading an HTML page for the website crawl: the images it shows or links to, and the links
to follow. Only the standard library's HTMLParser; URLs come out absolute."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from celery_core.crawler.sources.url_list import url_problem

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif"}
)
# Links to these are neither images we keep nor pages worth fetching.
SKIPPED_EXTENSIONS = frozenset(
    {".pdf", ".zip", ".gz", ".tgz", ".rar", ".7z", ".mp3", ".mp4", ".avi", ".mov", ".webm",
     ".mkv", ".exe", ".dmg", ".iso", ".css", ".js", ".json", ".xml", ".svg", ".ico", ".woff",
     ".woff2", ".ttf"}
)  # fmt: skip
_IMAGE_META = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src"}
)
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original")


def extension(url: str) -> str:
    path = urlsplit(url).path.lower()
    name = path.rsplit("/", 1)[-1]
    return name[name.rfind(".") :] if "." in name else ""


def parse_srcset(value: str) -> list[str]:
    """Every URL in a srcset, whatever its descriptor ("a.jpg 1x, b.jpg 2x" -> [a, b])."""
    urls = []
    pos, size = 0, len(value)
    while pos < size:
        while pos < size and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < size and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            while pos < size and value[pos] != ",":  # the descriptor
                pos += 1
        if url:
            urls.append(url)
    return urls


@dataclass
class PageLinks:
    images: list[tuple[str, str | None]] = field(default_factory=list)  # (url, alt text)
    links: list[str] = field(default_factory=list)
    title: str | None = None


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base_href: str | None = None
        self.images: list[tuple[str, str | None]] = []
        self.anchors: list[str] = []
        self.title_parts: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and self.base_href is None and values.get("href"):
            self.base_href = values["href"]
        elif tag in ("img", "source"):
            alt = values.get("alt") or values.get("title") or None
            for name in ("src", *_LAZY_SRC):
                if values.get(name):
                    self.images.append((values[name], alt))
            for name in ("srcset", "data-srcset"):
                self.images.extend((url, alt) for url in parse_srcset(values.get(name, "")))
        elif tag in ("a", "area") and values.get("href"):
            self.anchors.append(values["href"])
        elif tag == "meta":
            key = (values.get("property") or values.get("name") or "").strip().lower()
            if key in _IMAGE_META and values.get("content"):
                self.images.append((values["content"], None))
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)


def _absolute(base: str, ref: str) -> str | None:
    ref = ref.strip()
    if not ref or ref.startswith("#"):
        return None
    try:
        url = urldefrag(urljoin(base, ref)).url
    except ValueError:
        return None
    return url if url_problem(url) is None else None


def page_links(page_url: str, html: str) -> PageLinks:
    """Images and links of a page at `page_url` (its URL after redirects), absolute, in order
    of appearance, each once; relative ones resolved against `<base href>` when present."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    base = page_url
    if collector.base_href:
        base = _absolute(page_url, collector.base_href) or page_url
    result = PageLinks(title=" ".join("".join(collector.title_parts).split()) or None)
    seen: set[str] = set()
    for ref, alt in collector.images:
        url = _absolute(base, ref)
        if url and url not in seen and extension(url) not in SKIPPED_EXTENSIONS:
            seen.add(url)
            result.images.append((url, alt))
    for ref in collector.anchors:
        url = _absolute(base, ref)
        if not url or url in seen:
            continue
        seen.add(url)
        suffix = extension(url)
        if suffix in IMAGE_EXTENSIONS:
            result.images.append((url, None))
        elif suffix not in SKIPPED_EXTENSIONS:
            result.links.append(url)
    return result

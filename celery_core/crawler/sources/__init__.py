"""Where candidate image URLs come from: search engines, URL lists and websites."""

from celery_core.crawler.sources.baidu import BaiduSource
from celery_core.crawler.sources.bing import BingSource
from celery_core.crawler.sources.duckduckgo import DuckDuckGoSource
from celery_core.crawler.sources.engine import SearchEngineSource
from celery_core.crawler.sources.google import GoogleSource
from celery_core.crawler.sources.registry import (
    ENGINES,
    SearchOutcome,
    engine_base_urls,
    get_engine,
    iter_search_candidates,
    search_candidates,
)
from celery_core.crawler.sources.urls import UrlListSource, url_problem
from celery_core.crawler.sources.website import WebsiteSource

__all__ = [
    "ENGINES",
    "BaiduSource",
    "BingSource",
    "DuckDuckGoSource",
    "GoogleSource",
    "SearchEngineSource",
    "SearchOutcome",
    "UrlListSource",
    "WebsiteSource",
    "engine_base_urls",
    "get_engine",
    "iter_search_candidates",
    "search_candidates",
    "url_problem",
]

"""Where candidate image URLs come from besides search engines: URL lists and websites.

Search engines are in `celery_core.crawler.search`.
"""

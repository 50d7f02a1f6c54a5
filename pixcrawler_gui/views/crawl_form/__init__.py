"""The New crawl page."""

"""Downloading: the aiohttp fetcher with its limits and retries, the private-address guard,
robots.txt.
"""

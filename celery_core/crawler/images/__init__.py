"""Checking pictures: magic bytes, the header pixel cap, one real decode feeding the check, the
hash and the thumbnail.
"""

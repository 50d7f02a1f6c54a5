"""Duplicate detection: exact (sha256) and near (dHash) indexes, in memory and shared in Redis."""

"""Local workers under QProcess: supervision, readiness, crash backoff, the roster started with the
app.
"""

"""The Celery side: the app factory, the task base (result envelope and retries), worker leases,
the tasks and their bodies (engine <-> Redis).
"""

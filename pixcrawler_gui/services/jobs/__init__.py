"""Jobs seen from the app: the watcher, submit/cancel/retry, the SQLite history, thumbnails."""

"""Every worker the broker knows, local or remote, through Celery events and inspect."""

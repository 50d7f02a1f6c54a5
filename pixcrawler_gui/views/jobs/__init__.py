"""The Jobs page and job notifications."""

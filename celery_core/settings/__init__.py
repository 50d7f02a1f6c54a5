"""Settings read from .env files and the environment: the FileSettings base, the task system and
crawler settings, env-file rewriting, Redis URL checks, and where config and data live.
"""

"""The embedded Redis/Valkey server (binary discovery, process, locks, state file, control, the
foreground runner) and which Redis a client connects to.
"""

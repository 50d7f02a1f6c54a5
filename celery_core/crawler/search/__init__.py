"""Search engines as candidate sources: the shared base, one module per engine, and the registry
that searches several in turn.
"""

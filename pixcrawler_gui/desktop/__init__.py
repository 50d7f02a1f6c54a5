"""What the desktop app needs around its window: the icon and resource files, error dialogs and the
log file, Qt guards.
"""

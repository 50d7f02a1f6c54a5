"""The Settings dialog, generated from the settings classes' field metadata."""

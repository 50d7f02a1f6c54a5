"""The Workers page."""

"""Whether the broker and the result backend answer."""

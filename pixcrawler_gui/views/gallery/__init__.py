"""The Gallery page and the image detail view."""

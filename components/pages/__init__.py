"""One module per page (or per family of small read-only pages)."""

"""Reusable UI pieces (layout shell, tables, empty states) and the pages built from them."""

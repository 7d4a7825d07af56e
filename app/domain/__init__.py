"""Pure business rules: no I/O, no database, no Reflex."""

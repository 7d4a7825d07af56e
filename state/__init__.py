"""Reflex State classes: thin. Each handler checks the caller's capability on the server (by
re-reading the user from the database), calls a service in app/services, and sets vars."""

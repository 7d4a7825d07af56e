"""Hubcast: WhatsApp campaigns for marketers, self-hosted.

This package holds the business core (settings, models, domain rules, services) and the
Reflex entry module `app.app`. Importing `app` itself stays cheap and imports no Reflex.
"""

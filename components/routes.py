"""Every page route in one place, so pages, links, redirects and tests agree.

A leaf module (it imports nothing): `app/app.py` registers the pages with these, components link to them,
and State handlers redirect to them. State sits below components in the layers of pyproject.toml; this
module is the one exception it may import (a list of strings, no component code). The HTTP routes that
are not pages (webhooks, exports, health) are mounted in app/http_api.py.
"""

from __future__ import annotations

INDEX = "/"
LOGIN = "/login"
DASHBOARD = "/dashboard"  # the home dashboard: where users land after signing in
CAMPAIGNS = "/campaigns"
CAMPAIGN_NEW = "/campaigns/new"
CAMPAIGN_EDIT = "/campaigns/[campaign_id]/edit"
CAMPAIGN_DETAIL = "/campaigns/[campaign_id]"
CONTACTS = "/contacts"
LISTS = "/lists"
LIST_DETAIL = "/lists/[list_id]"
SEGMENTS = "/segments"
SEGMENT_NEW = "/segments/new"
SEGMENT_EDIT = "/segments/[segment_id]"
TEMPLATES = "/templates"
CHANNELS = "/channels"
USERS = "/users"
AUDIT = "/audit"


def campaign_edit(campaign_id):
    """The wizard on a draft: `campaign_id` is a str or a Reflex Var (the result is then a Var too)."""
    return CAMPAIGNS + "/" + campaign_id + "/edit"

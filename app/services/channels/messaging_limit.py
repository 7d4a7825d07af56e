"""A channel's place under Meta's daily messaging limit: its tier, and the portfolio that shares it.

Meta caps how many unique people a business may start conversations with (template messages) in a rolling
24 hours: 250 / 2,000 / 10,000 / 100,000 / unlimited. Since October 2025 the cap belongs to the business
portfolio, so every number of one portfolio draws on the same count. A channel records
- `messaging_limit_tier`: read from the phone number (`messaging_limit_tier`) when the connection is tested
  (`record_from_phone_info`) and from account webhooks (`account_update` / `phone_number_quality_update`:
  app/services/inbound/account_events.py calls `record_tier`);
- `messaging_portfolio_id`: the portfolio it shares the limit with, when a webhook or an admin says so;
  until then, the channels of one WhatsApp Business Account share it (a WABA belongs to one portfolio).
`quota_scope` names the count a channel draws on; `scope_channel_ids` lists the channels that share it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from app.domain.messaging_limits import TierError, normalise_tier, tier_limit
from app.models import Channel
from app.timeutil import utcnow

log = logging.getLogger(__name__)

__all__ = ["TierError", "channel_limit", "quota_scope", "record_from_phone_info", "record_tier", "scope_channel_ids"]


def quota_scope(channel: Channel) -> str:
    """The name of the 24-hour count this channel draws on (shared by every channel of its portfolio)."""
    if channel.messaging_portfolio_id:
        return f"portfolio:{channel.messaging_portfolio_id}"
    if channel.business_account_id:
        return f"waba:{channel.business_account_id}"
    return f"channel:{channel.id}"


def scope_channel_ids(session: Session, channel: Channel) -> list[int]:
    """Every channel drawing on the same count as `channel` (itself included)."""
    if channel.messaging_portfolio_id:
        where = Channel.messaging_portfolio_id == channel.messaging_portfolio_id
    elif channel.business_account_id:
        where = (Channel.business_account_id == channel.business_account_id) & (Channel.messaging_portfolio_id == "")
    else:
        return [channel.id] if channel.id is not None else []
    ids = set(session.execute(select(Channel.id).where(or_(where, Channel.id == channel.id))).scalars())
    return sorted(ids)


def channel_limit(channel: Channel) -> int | None:
    """Unique people per window for the channel's tier; None when unlimited or not known yet."""
    try:
        return tier_limit(channel.messaging_limit_tier)
    except TierError:  # stored before a stricter parser: treat as not known rather than stop sending
        return None


def record_tier(session: Session, channel: Channel, tier: str | None, portfolio: str | None = None) -> bool:
    """Store the channel's tier (and, when given, the portfolio it shares it with); True when it changed.
    A tier Hubcast does not know raises TierError and changes nothing. The caller commits."""
    text = normalise_tier(tier)
    changed = False
    if text and text != channel.messaging_limit_tier:
        channel.messaging_limit_tier = text
        changed = True
    portfolio_id = str(portfolio or "").strip()[:64]
    if portfolio_id and portfolio_id != channel.messaging_portfolio_id:
        channel.messaging_portfolio_id = portfolio_id
        changed = True
    if changed:
        channel.updated_at = utcnow()
        session.add(channel)
        log.info(
            "channel %s: messaging limit %s, shared as %s",
            channel.id,
            channel.messaging_limit_tier,
            quota_scope(channel),
        )
    return changed


def record_from_phone_info(session: Session, channel: Channel, info: dict[str, Any]) -> bool:
    """The phone number's fields from a connection test (`messaging_limit_tier`); odd values are logged and
    ignored: a connection test must not fail over the tier."""
    try:
        return record_tier(session, channel, info.get("messaging_limit_tier"))
    except TierError as exc:
        log.warning("channel %s: %s", channel.id, exc)
        return False

"""What the review step says about the daily messaging limit and the frequency cap, before sending.

"This campaign needs N new conversations; your number has M left in the next 24 h": N is the reach minus the
people the number's portfolio already messaged in the window (a list or segment; a file counts everyone),
M the limit minus the people messaged in the window (`quota.quota_outlook`). Beyond M, rows wait and are
sent as the window frees (`quota`). The frequency cap's skipped recipients are counted the same way
(`frequency_cap.capped_count`). Plain strings, ready for the wizard's vars (empty: nothing to say).
"""

from __future__ import annotations

from sqlmodel import Session

from app.domain.messaging_limits import tier_label
from app.models import Campaign, Channel, ContactIdentity
from app.services.audiences.recipients import recipient_select
from app.services.audiences.summary import AudienceError
from app.services.sending.frequency_cap import capped_count
from app.services.sending.quota import already_messaged, quota_outlook
from app.settings import frequency_cap_hours, messaging_limit_window_s


def window_words(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"


def limits_review(session: Session, campaign: Campaign, reach: int) -> dict[str, str]:
    """{"quota_note", "quota_wait", "cap_note"} for the review step (see the module docstring). An audience
    that cannot be read (a segment deleted meanwhile) says nothing here: the audience summary shows why."""
    try:
        return _limits_review(session, campaign, reach)
    except AudienceError:
        return {"quota_note": "", "quota_wait": "", "cap_note": ""}


def _limits_review(session: Session, campaign: Campaign, reach: int) -> dict[str, str]:
    notes = {"quota_note": "", "quota_wait": "", "cap_note": ""}
    channel = session.get(Channel, campaign.channel_id) if campaign.channel_id else None
    capped = capped_count(session, campaign)
    if capped is not None:
        notes["cap_note"] = (
            f"{capped:,} recipient(s) will be skipped by the frequency cap (a marketing message from another "
            f"campaign in the last {frequency_cap_hours():g} h)."
        )
    elif frequency_cap_hours() > 0 and campaign.audience_kind == "csv":
        notes["cap_note"] = (
            f"The frequency cap ({frequency_cap_hours():g} h) skips the file's numbers messaged by another "
            "campaign; they are counted as sending starts."
        )
    if channel is None or reach <= 0:
        return notes
    window = messaging_limit_window_s()
    outlook = quota_outlook(session, channel, reach, window_s=window)
    if outlook.limit is None:
        return notes
    known = 0
    if campaign.audience_kind in ("list", "segment"):
        known = already_messaged(
            session, channel, recipient_select(session, campaign, ContactIdentity.address).subquery(), window_s=window
        )
        outlook = quota_outlook(session, channel, max(0, reach - known), window_s=window)
    plan = outlook.plan
    notes["quota_note"] = (
        f"This campaign needs {plan.needed:,} new conversation(s); your number has {plan.left:,} left in the next "
        f"{window_words(window)} (messaging limit: {tier_label(channel.messaging_limit_tier)}"
        + (", shared by the numbers of its business portfolio" if channel.messaging_portfolio_id else "")
        + ")."
    )
    if plan.waiting:
        notes["quota_wait"] = (
            f"{plan.waiting:,} message(s) will wait for quota and be sent as the {window_words(window)} window frees."
        )
    return notes

"""The frequency cap: at most one marketing message per contact per N hours, across campaigns.

N is `settings.frequency_cap_hours()` (HUBCAST_FREQUENCY_CAP_HOURS; 0 = off, the default). It is an
installation-wide policy rather than a per-campaign choice: it protects the contacts from the business as a
whole, whoever builds the campaign, so a marketer cannot switch it off for "just this one"; it is set where
the operator sets the other sending limits, and is the same on every web and worker machine.

Where it acts: when a MARKETING campaign's audience is frozen (`freeze._write`, in the transaction of each
chunk, before any row of it can be claimed), recipients whose address got a marketing template from another
campaign within N hours (`sent_at`, rows that reached WhatsApp: sent, delivered, read; not failed or limited
by WhatsApp, see 131049) become `skipped` with the reason "Frequency cap", so the campaign's counts show
them from the start. The review step counts them beforehand for a list or segment (`capped_count`); for a
file they are counted as the freeze reads it.
Limits: two campaigns frozen at the same moment to the same person cannot see each other's sends yet.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import distinct, exists, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from app.domain.campaign_status import R_DELIVERED, R_QUEUED, R_READ, R_SENT, R_SKIPPED
from app.domain.messaging_limits import FREQUENCY_CAP_TITLE
from app.models import Campaign, CampaignRecipient, ContactIdentity, Template
from app.services.audiences.recipients import recipient_select
from app.settings import frequency_cap_hours
from app.timeutil import utcnow

R = CampaignRecipient.__table__
_REACHED = (R_SENT, R_DELIVERED, R_READ)
_IN_CHUNK = 900


def is_marketing(session: Session, campaign_id: int) -> bool:
    category = session.execute(
        select(Template.category)
        .select_from(Campaign)
        .join(Template, Template.id == Campaign.template_id)
        .where(Campaign.id == campaign_id)
    ).scalar()
    return str(category or "").upper() == "MARKETING"


def _recent_marketing(campaign_id: int, hours: float):
    """Addresses that got a marketing template from another campaign within `hours` (a one-column SELECT)."""
    other = aliased(CampaignRecipient)
    since = utcnow() - timedelta(hours=hours)
    return (
        select(other.address)
        .join(Campaign, Campaign.id == other.campaign_id)
        .join(Template, Template.id == Campaign.template_id)
        .where(
            other.sent_at >= since,
            other.campaign_id != campaign_id,
            other.status.in_(_REACHED),
            func.upper(Template.category) == "MARKETING",
        )
    )


def skip_capped(session: Session, campaign_id: int, addresses: list[str], now) -> int:
    """Mark the just-frozen `addresses` of the campaign that the cap protects `skipped` ("Frequency cap"),
    in the caller's transaction. Returns how many. Costs one environment read when the cap is off."""
    hours = frequency_cap_hours()
    if hours <= 0 or not addresses or not is_marketing(session, campaign_id):
        return 0
    other = aliased(CampaignRecipient)
    since = now - timedelta(hours=hours)
    recent = (
        exists()
        .where(
            other.address == R.c.address,
            other.sent_at >= since,
            other.campaign_id != campaign_id,
            other.status.in_(_REACHED),
            Campaign.id == other.campaign_id,
            Template.id == Campaign.template_id,
            func.upper(Template.category) == "MARKETING",
        )
        .correlate(R)
    )
    skipped = 0
    for start in range(0, len(addresses), _IN_CHUNK):
        skipped += (
            session.execute(
                update(R)
                .where(
                    R.c.campaign_id == campaign_id,
                    R.c.status == R_QUEUED,
                    R.c.address.in_(addresses[start : start + _IN_CHUNK]),
                    recent,
                )
                .values(status=R_SKIPPED, error_title=FREQUENCY_CAP_TITLE, updated_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
    return skipped


def capped_count(session: Session, campaign: Campaign) -> int | None:
    """How many of a list/segment audience the cap will skip (None: the cap is off, the template is not
    marketing, or the audience is a file, whose numbers are checked as it is frozen)."""
    hours = frequency_cap_hours()
    if hours <= 0 or campaign.id is None or not is_marketing(session, campaign.id):
        return None
    if campaign.audience_kind not in ("list", "segment"):
        return None
    query = recipient_select(session, campaign, func.count(distinct(ContactIdentity.address))).where(
        ContactIdentity.address.in_(_recent_marketing(campaign.id, hours))
    )
    return int(session.execute(query).scalar() or 0)

"""The whole Hubcast data model as SQLModel tables.

Conventions, chosen so one schema runs unchanged on SQLite and PostgreSQL:
- timestamps are aware UTC (`app.timeutil.utcnow()`); a campaign keeps its display time zone separately;
- enumerations are short strings validated in `app.domain` (no database ENUM types to migrate);
- flexible structures (custom fields, segment rules, template components, variable mappings) are JSON.
The schema is created by Alembic migrations (`migrations/`), never at import time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Computed, Index, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Field, SQLModel

from app.secret_box import EncryptedString, EncryptedText
from app.timeutil import utcnow


def _json(default: Any = None) -> Any:
    factory = (lambda: {}) if default is None else default
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


# --- accounts -------------------------------------------------------------------------------


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(default="", max_length=120)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)  # admin | advanced | basic (app.domain.permissions.ROLES)
    is_active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class UserSession(SQLModel, table=True):
    """A server-side login session. Only a SHA-256 of the browser's secret is stored."""

    __tablename__ = "user_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # absolute expiry; idle expiry is computed from last_seen_at
    revoked_at: datetime | None = None
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)


# --- channels -------------------------------------------------------------------------------


class Channel(SQLModel, table=True):
    __tablename__ = "channels"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    kind: str = Field(max_length=24)  # whatsapp_cloud | sandbox
    phone_number_id: str = Field(default="", max_length=64)
    business_account_id: str = Field(default="", max_length=64)
    display_phone_number: str = Field(default="", max_length=32)
    # The business name people see in WhatsApp (the preview shows it; empty: the channel's name). 0010
    display_name: str = Field(default="", max_length=120, sa_column_kwargs={"server_default": ""})
    # Secrets: never copied into a public Reflex var; the UI shows only whether they are set.
    # Sealed at rest (app.secret_box); the stored token is longer than the secret, hence the limits
    # on what the channel form accepts (app secret and verify token: 100 characters).
    access_token: str = Field(default="", sa_column=Column(EncryptedText(), nullable=False, default=""))
    app_secret: str = Field(default="", sa_column=Column(EncryptedString(255), nullable=False, default=""))
    verify_token: str = Field(default="", sa_column=Column(EncryptedString(255), nullable=False, default=""))
    api_base_url: str = Field(default="https://graph.facebook.com", max_length=255)
    api_version: str = Field(default="v23.0", max_length=16)
    messages_per_second: int = Field(default=80)
    # Meta's daily messaging limit (app/domain/messaging_limits.py, migration 0009): the number's tier
    # ("TIER_2K"; "" not known yet) and the business portfolio whose numbers share it ("": this channel's
    # WhatsApp Business Account). Read from the phone number on connect and from account webhooks.
    messaging_limit_tier: str = Field(default="", max_length=24, sa_column_kwargs={"server_default": ""})
    messaging_portfolio_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # What Meta's account webhooks last said (app/services/inbound/account_events.py, migration 0007): the
    # number's quality rating (GREEN / YELLOW / RED / FLAGGED / ...) and the latest account event in words
    # (a restriction, a violation, a limit change), shown on the Channels page.
    quality_rating: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    account_notice: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})
    status: str = Field(default="disconnected", max_length=16)  # connected | disconnected | error
    last_checked_at: datetime | None = None
    last_error: str = Field(default="", max_length=500)  # Hubcast's words: every role reads it
    # What the API host answered (Meta's message or a raw body): admins only (migration 0013).
    last_error_detail: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- contacts, lists, segments ---------------------------------------------------------------


class _CustomTermsExpression(ColumnElement):
    """contacts.custom_terms' generation expression: `hubcast_custom_terms(custom_fields)` on PostgreSQL
    (migration 0016), NULL elsewhere (SQLite has no such function; the column stays empty there)."""

    inherit_cache = True


@compiles(_CustomTermsExpression)
def _custom_terms_elsewhere(element: _CustomTermsExpression, compiler: Any, **kw: Any) -> str:
    return "NULL"


@compiles(_CustomTermsExpression, "postgresql")
def _custom_terms_postgresql(element: _CustomTermsExpression, compiler: Any, **kw: Any) -> str:
    return "hubcast_custom_terms(custom_fields)"


class Contact(SQLModel, table=True):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_last_first", "last_name", "first_name"),
        # The Contacts page's substring search on PostgreSQL (pg_trgm GIN, 0005); on SQLite an empty
        # partial index (WHERE 0), which costs nothing, so both databases share one declared schema.
        Index(
            "ix_contacts_search_trgm",
            "first_name",
            "last_name",
            "email",
            postgresql_using="gin",
            postgresql_ops=dict.fromkeys(("first_name", "last_name", "email"), "gin_trgm_ops"),
            sqlite_where=text("0"),
        ),
        # A list's summary: contacts' flags in id order from the index alone, merge-joined with members (0006).
        Index("ix_contacts_id_flags", "id", "channel_flags"),
    )
    id: int | None = Field(default=None, primary_key=True)
    first_name: str = Field(default="", max_length=120)
    last_name: str = Field(default="", max_length=120)
    email: str = Field(default="", max_length=254)
    country: str = Field(default="", max_length=2, index=True)  # ISO 3166-1 alpha-2
    city: str = Field(default="", max_length=120)
    language: str = Field(default="", max_length=16)
    # jsonb on PostgreSQL (0018): segment rules no index answers read `->>` from every contact, a lookup in
    # the stored binary document instead of a parse of its text.
    custom_fields: dict = Field(
        default_factory=dict, sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    # Which channel types the contact has a subscribed / an unsubscribed identity on (bits in
    # app/services/audiences/channel_flags.py). Kept by triggers on contact_identities (migration 0005),
    # never written by the application: the summary and the contact filters read it instead of joining.
    channel_flags: int = Field(default=0, index=True, sa_column_kwargs={"server_default": "0"})


# contacts.custom_terms: custom_fields as text terms for segment rules, generated by PostgreSQL
# (hubcast_custom_terms, migration 0016); NULL and unused on SQLite. A table column the ORM does not map:
# the application never writes it (a generated column refuses values) and only segment rules read it
# (`CONTACT_CUSTOM_TERMS`, app/services/audiences/segment_sql.py).
CONTACT_CUSTOM_TERMS = Column(
    "custom_terms",
    JSON().with_variant(ARRAY(Text), "postgresql"),
    Computed(_CustomTermsExpression(), persisted=True),
    nullable=True,
)
Contact.__table__.append_column(CONTACT_CUSTOM_TERMS)
# Segment rules on custom fields (equals / is one of / is not empty) on PostgreSQL: GIN over custom_terms
# (0016); on SQLite an empty partial index, like ix_contacts_search_trgm.
Index("ix_contacts_custom_terms", CONTACT_CUSTOM_TERMS, postgresql_using="gin", sqlite_where=text("0"))


class ContactIdentity(SQLModel, table=True):
    """How a contact is reached on one channel type, and whether they agreed to be."""

    __tablename__ = "contact_identities"
    __table_args__ = (
        UniqueConstraint("channel_type", "address", name="uq_identity_type_address"),
        Index("ix_identity_contact_type", "contact_id", "channel_type", "subscribed"),
        # Who is subscribed on a channel (filters, freezing an audience) without touching the table (0002).
        Index("ix_identity_type_subscribed_contact", "channel_type", "subscribed", "contact_id"),
        # Opt-outs in the home dashboard's window: only unsubscribed WhatsApp identities, by time (0011).
        Index(
            "ix_identity_whatsapp_opt_out",
            "subscription_changed_at",
            postgresql_where=text("channel_type = 'whatsapp' AND subscribed = false"),
            sqlite_where=text("channel_type = 'whatsapp' AND subscribed = 0"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", ondelete="CASCADE")
    channel_type: str = Field(max_length=16)  # whatsapp | instagram | messenger | sms
    address: str = Field(max_length=255)  # E.164 for whatsapp/sms, a platform id otherwise
    subscribed: bool = Field(default=True)
    subscription_changed_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


class ContactList(SQLModel, table=True):
    __tablename__ = "contact_lists"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    description: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ListMembership(SQLModel, table=True):
    __tablename__ = "list_memberships"
    __table_args__ = (
        Index("ix_membership_contact", "contact_id"),
        # Member counts and sources per list from the index alone (0002).
        Index("ix_membership_list_source", "list_id", "source"),
    )
    list_id: int = Field(foreign_key="contact_lists.id", primary_key=True, ondelete="CASCADE")
    contact_id: int = Field(foreign_key="contacts.id", primary_key=True, ondelete="CASCADE")
    source: str = Field(default="manual", max_length=16)  # manual | import | integration
    added_at: datetime = Field(default_factory=utcnow)


class Segment(SQLModel, table=True):
    """Rules are evaluated as SQL when used, so later contacts that match are members."""

    __tablename__ = "segments"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    description: str = Field(default="", max_length=500)
    match: str = Field(default="all", max_length=8)  # all | any
    rules: list = _json(list)  # [{"field": "country", "op": "equals", "value": "AU"}, ...]
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- templates ------------------------------------------------------------------------------


class Template(SQLModel, table=True):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("channel_id", "name", "language", name="uq_template_channel_name_lang"),)
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int = Field(foreign_key="channels.id", index=True)
    name: str = Field(max_length=512)
    language: str = Field(max_length=16)  # e.g. en_US, fr
    category: str = Field(default="MARKETING", max_length=16)  # MARKETING | UTILITY | AUTHENTICATION
    status: str = Field(default="PENDING", max_length=16)  # APPROVED | PENDING | REJECTED | PAUSED | DISABLED
    parameter_format: str = Field(default="POSITIONAL", max_length=16)  # POSITIONAL | NAMED
    components: list = _json(list)  # Meta's component objects, as Meta returns them
    external_id: str = Field(default="", max_length=64)
    # From Meta's template webhooks (0007): quality GREEN / YELLOW / RED / UNKNOWN ("" not reported) and why
    # the status last changed (a rejection or pause reason), shown on the Templates page.
    quality_score: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    status_reason: str = Field(default="", max_length=500, sa_column_kwargs={"server_default": ""})
    synced_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# --- campaigns ------------------------------------------------------------------------------


class AudienceUpload(SQLModel, table=True):
    """A CSV audience file, stored under the private upload dir (never served by URL)."""

    __tablename__ = "audience_uploads"
    id: int | None = Field(default=None, primary_key=True)
    original_filename: str = Field(max_length=255)
    stored_path: str = Field(max_length=500)
    size_bytes: int = 0
    sha256: str = Field(default="", max_length=64)
    delimiter: str = Field(default=",", max_length=1)
    id_column: str = Field(default="phone", max_length=64)
    columns: list = _json(list)
    row_count: int = 0
    valid_count: int = 0
    invalid_count: int = 0
    duplicate_count: int = 0
    uploaded_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow)
    # When the retention job deleted the file (its campaigns ended long enough ago); the counts stay.
    purged_at: datetime | None = None
    # "Send again to…" (issue 15): a file Hubcast wrote from this campaign's recipients, not one a user brought
    # in, so a user who may send campaigns may send it without audiences:manage (0015).
    derived_from_campaign_id: int | None = None


class Campaign(SQLModel, table=True):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_status_created", "status", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    status: str = Field(default="draft", max_length=16)  # app.domain.campaign_status
    wizard_step: int = Field(default=1)  # where a Draft resumes
    audience_kind: str = Field(default="", max_length=16)  # list | segment | csv
    audience_list_id: int | None = Field(default=None, foreign_key="contact_lists.id")
    audience_segment_id: int | None = Field(default=None, foreign_key="segments.id")
    audience_upload_id: int | None = Field(default=None, foreign_key="audience_uploads.id")
    channel_id: int | None = Field(default=None, foreign_key="channels.id")
    template_id: int | None = Field(default=None, foreign_key="templates.id")
    variable_mapping: dict = _json()  # {"body.1": {"source": "field", "key": "first_name", "fallback": ""}}
    timezone: str = Field(default="UTC", max_length=64)
    scheduled_at: datetime | None = None  # UTC instant everyone receives it
    pause_reason: str = Field(default="", max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    sent_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The audience freeze streams (app/services/sending/freeze.py, migration 0004): while `freezing`, rows
    # are still being added after `freeze_cursor` (list/segment: the last contact identity id frozen; CSV:
    # the last file line read) by the process whose lease `freeze_heartbeat_at` is (NULL: free).
    freezing: bool = False
    freeze_cursor: int = 0
    freeze_heartbeat_at: datetime | None = None
    # Counters are denormalised for the live list; recipients remain the source of truth.
    total_recipients: int = 0
    queued_count: int = 0
    sent_count: int = 0
    delivered_count: int = 0
    read_count: int = 0
    failed_count: int = 0
    unknown_count: int = 0
    replied_count: int = 0
    limited_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # 131049 (0009)


class CampaignRecipient(SQLModel, table=True):
    """One row per (campaign, address): the database, not the queue, decides who was sent."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "address", name="uq_recipient_campaign_address"),
        # A campaign's rows by status; with the number too, the campaign page's countries read the index alone (0015).
        Index("ix_recipient_campaign_status_address", "campaign_id", "status", "address"),
        # The home dashboard's per-day figures from index ranges of its window (0011).
        Index("ix_recipient_sent_status", "sent_at", "status"),
        Index("ix_recipient_failed_at", "failed_at"),
        # Who got a template message lately: the frequency cap looks up addresses, the daily messaging
        # limit's count reads a time range (0009).
        Index("ix_recipient_address_sent", "address", "sent_at"),
        Index("ix_recipient_sent_at", "sent_at"),
        # The campaign page's live timeline: rows of one campaign changed in the last minutes (0010).
        Index("ix_recipient_campaign_updated", "campaign_id", "updated_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", ondelete="CASCADE")
    address: str = Field(max_length=32)  # E.164
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", ondelete="SET NULL")
    variables: dict = _json()  # values frozen when the audience was frozen
    status: str = Field(default="queued", max_length=16)  # app.domain.recipient_status
    message_id: str | None = Field(default=None, max_length=128, index=True)  # wamid
    error_code: int | None = None
    error_title: str = Field(default="", max_length=500)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    failed_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class WebhookStatusEvent(SQLModel, table=True):
    """Append-only log of provider status callbacks; duplicates dropped by (message id, status)."""

    __tablename__ = "webhook_status_events"
    __table_args__ = (
        UniqueConstraint("message_id", "status", name="uq_status_event_message_status"),
        # The applier's backlog in id order; an event leaves it once applied (0017).
        Index(
            "ix_status_event_unapplied",
            "id",
            sqlite_where=text("applied_at IS NULL"),
            postgresql_where=text("applied_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int | None = Field(default=None, foreign_key="channels.id")
    message_id: str = Field(max_length=128)
    status: str = Field(max_length=16)  # sent | delivered | read | failed
    recipient_id: int | None = Field(default=None, index=True)  # from biz_opaque_callback_data
    provider_timestamp: datetime | None = None
    error_code: int | None = None
    error_title: str = Field(default="", max_length=500)
    payload: dict = _json()
    received_at: datetime = Field(default_factory=utcnow)
    applied_at: datetime | None = None


class InboundMessage(SQLModel, table=True):
    """Messages contacts send us (replies, STOP keywords)."""

    __tablename__ = "inbound_messages"
    # Replies to a campaign message are found by the wamid they answer (0010).
    __table_args__ = (
        Index("ix_inbound_context", "context_message_id"),
        Index("ix_inbound_received_at", "received_at"),  # messages per day (0011)
        # Replies to campaign messages per day on the home dashboard, index-only; a campaign's replies (0015).
        Index("ix_inbound_received_campaign", "received_at", "campaign_id"),
        Index("ix_inbound_campaign_received", "campaign_id", "received_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel_id: int | None = Field(default=None, foreign_key="channels.id")
    message_id: str = Field(max_length=128, unique=True)
    from_address: str = Field(max_length=32, index=True)
    kind: str = Field(default="text", max_length=16)
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    context_message_id: str | None = Field(default=None, max_length=128)  # the campaign message replied to
    payload: str = Field(default="", max_length=256, sa_column_kwargs={"server_default": ""})  # a button's (0010)
    received_at: datetime = Field(default_factory=utcnow)
    # The campaign whose message this answers (its `context.id` is a wamid that campaign sent through this
    # channel), set when the reply is recorded (0015): the dashboard counts replies as the campaign page does.
    campaign_id: int | None = None


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, index=True)
    actor_email: str = Field(default="", max_length=254)
    action: str = Field(max_length=64, index=True)  # e.g. user.create, campaign.send, permission.refused
    outcome: str = Field(default="ok", max_length=16)  # ok | refused | error
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    detail: dict = _json()
    ip: str = Field(default="", max_length=64)


class TrialSend(SQLModel, table=True):
    """One "Send a test message" from the wizard (SPEC S10; app/services/campaigns/trial_send.py): sent
    through the real sending path but never a CampaignRecipient, so campaign counts never include it.
    Status webhooks for its wamid move `status` forward (sent < delivered < read; failed)."""

    # The table keeps the name migration 0003 gave it: renaming the class needs no migration, and a
    # deployed database keeps its rows.
    __tablename__ = "test_sends"
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id", ondelete="CASCADE", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    to: str = Field(max_length=32)  # E.164
    message_id: str | None = Field(default=None, max_length=128, index=True)  # wamid
    status: str = Field(default="sending", max_length=16)  # sending | sent | delivered | read | failed | unknown
    error_code: int | None = None
    error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DailyMessageStats(SQLModel, table=True):
    """Messages sent on one settled UTC day and how many of them were delivered / read (the home dashboard's
    per-day chart). Written by app.services.campaigns.daily_stats once the day is settled, so a 90-day
    window reads ~90 rows instead of a million index entries (issue 15 §7)."""

    __tablename__ = "daily_message_stats"

    day: date = Field(primary_key=True)
    sent: int = 0
    delivered: int = 0
    read: int = 0
    computed_at: datetime = Field(default_factory=utcnow)

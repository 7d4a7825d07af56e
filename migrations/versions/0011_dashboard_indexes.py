"""home dashboard: index ranges for the last 7/30/90 days; All Campaigns sorted by date

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

The home dashboard (app/services/campaigns/dashboard.py, issue 15 §7) reads only the window it shows:
- ix_recipient_sent_status (sent_at, status): messages sent per day and how many of them were delivered or
  read, from the index alone (an index-only scan of the window, never the 5,000,000-row table);
- ix_recipient_failed_at: failures per day;
- ix_inbound_received_at: replies per day;
- ix_identity_whatsapp_opt_out: a partial index holding only unsubscribed WhatsApp identities, by the time of
  the change (opt-outs in the window; a few percent of the identities, so it costs little to keep).
bench/dashboard.py measures each query with and without them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same text as the dashboard's query (app/services/campaigns/dashboard.py OPT_OUT_PREDICATE): PostgreSQL
# and SQLite use a partial index only when the query's condition matches its predicate.
OPT_OUT_PREDICATE = "channel_type = 'whatsapp' AND subscribed = false"
SQLITE_OPT_OUT_PREDICATE = "channel_type = 'whatsapp' AND subscribed = 0"


def upgrade() -> None:
    op.create_index("ix_recipient_sent_status", "campaign_recipients", ["sent_at", "status"], unique=False)
    op.create_index("ix_recipient_failed_at", "campaign_recipients", ["failed_at"], unique=False)
    op.create_index("ix_inbound_received_at", "inbound_messages", ["received_at"], unique=False)
    op.create_index(
        "ix_identity_whatsapp_opt_out",
        "contact_identities",
        ["subscription_changed_at"],
        unique=False,
        postgresql_where=sa.text(OPT_OUT_PREDICATE),
        sqlite_where=sa.text(SQLITE_OPT_OUT_PREDICATE),
    )


def downgrade() -> None:
    op.drop_index("ix_identity_whatsapp_opt_out", table_name="contact_identities")
    op.drop_index("ix_inbound_received_at", table_name="inbound_messages")
    op.drop_index("ix_recipient_failed_at", table_name="campaign_recipients")
    op.drop_index("ix_recipient_sent_status", table_name="campaign_recipients")

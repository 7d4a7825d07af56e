"""campaign insight speed, replies on the dashboard, "send again" files a basic user may send

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

- inbound_messages.campaign_id: the campaign whose message a reply answers (its context id is a wamid that
  campaign sent through the same channel), set when the reply is recorded and filled here for the replies
  already stored; ix_inbound_received_campaign (received_at, campaign_id) lets the home dashboard count
  replies per day as the campaign page does, from the index alone; ix_inbound_campaign_received
  (campaign_id, received_at) gives the campaign page its replies (count, newest first, per button) without
  reading the campaign's recipient rows.
- ix_recipient_campaign_status (campaign_id, status) becomes ix_recipient_campaign_status_address (campaign_id,
  status, address): every query by campaign and status still uses it, and the campaign page's countries
  (grouped by status and the number's first digits) read the index alone instead of every row.
- audience_uploads.derived_from_campaign_id: a "send again to…" file, written by Hubcast from that
  campaign's recipients (not brought in by a user).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audience_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derived_from_campaign_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE inbound_messages SET campaign_id = (
            SELECT r.campaign_id FROM campaign_recipients r JOIN campaigns c ON c.id = r.campaign_id
            WHERE r.message_id = inbound_messages.context_message_id AND c.channel_id = inbound_messages.channel_id
            LIMIT 1)
        WHERE context_message_id IS NOT NULL AND channel_id IS NOT NULL
        """
    )
    op.create_index("ix_inbound_received_campaign", "inbound_messages", ["received_at", "campaign_id"], unique=False)
    op.create_index("ix_inbound_campaign_received", "inbound_messages", ["campaign_id", "received_at"], unique=False)
    op.create_index(
        "ix_recipient_campaign_status_address",
        "campaign_recipients",
        ["campaign_id", "status", "address"],
        unique=False,
    )
    op.drop_index("ix_recipient_campaign_status", table_name="campaign_recipients")


def downgrade() -> None:
    op.create_index("ix_recipient_campaign_status", "campaign_recipients", ["campaign_id", "status"], unique=False)
    op.drop_index("ix_recipient_campaign_status_address", table_name="campaign_recipients")
    op.drop_index("ix_inbound_campaign_received", table_name="inbound_messages")
    op.drop_index("ix_inbound_received_campaign", table_name="inbound_messages")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("campaign_id")
    with op.batch_alter_table("audience_uploads", schema=None) as batch_op:
        batch_op.drop_column("derived_from_campaign_id")

"""daily messaging limit (tier, portfolio), 131049 counter, recipients by address / sent time

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06

Issue 12, points 7 and 8: a channel records Meta's messaging limit tier and the business portfolio it
shares it with; a campaign counts its rows Meta limited (131049); two indexes let the frequency cap look
up an address's recent template messages and the messaging-limit count read the last 24 hours cheaply.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("messaging_limit_tier", sa.String(length=24), nullable=False, server_default=""))
        batch.add_column(sa.Column("messaging_portfolio_id", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("limited_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_recipient_address_sent", "campaign_recipients", ["address", "sent_at"], unique=False)
    op.create_index("ix_recipient_sent_at", "campaign_recipients", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_recipient_sent_at", table_name="campaign_recipients")
    op.drop_index("ix_recipient_address_sent", table_name="campaign_recipients")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("limited_count")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("messaging_portfolio_id")
        batch.drop_column("messaging_limit_tier")

"""campaign insight: button payloads of replies, replies by context, a channel's display name, timeline index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

- inbound_messages.payload: the quick-reply payload (or interactive reply id) of a button reply, so the
  campaign page can count replies per button and "Send again to… clicked button X" can find them.
- ix_inbound_context: replies are matched to campaign messages by `context.id` (the wamid we sent).
- channels.display_name: the business name the message preview shows (empty: the channel's name).
- ix_recipient_campaign_updated: the live timeline reads only the rows of one campaign that changed in
  the last couple of minutes (every timestamp of a row is at most its updated_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("payload", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False, server_default="")
        )
        batch_op.create_index("ix_inbound_context", ["context_message_id"], unique=False)
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False, server_default="")
        )
    op.create_index("ix_recipient_campaign_updated", "campaign_recipients", ["campaign_id", "updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_recipient_campaign_updated", table_name="campaign_recipients")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("display_name")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_context")
        batch_op.drop_column("payload")

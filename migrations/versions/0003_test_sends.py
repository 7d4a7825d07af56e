"""test sends: the wizard's "Send a test message", kept apart from campaign recipients

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

A test message goes through the real sending path but is not a campaign recipient (it must never
change a campaign's counts), so it has its own table; status webhooks find it by its wamid.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "test_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("to", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_test_sends_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_test_sends_message_id"), ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("test_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_sends_message_id"))
        batch_op.drop_index(batch_op.f("ix_test_sends_campaign_id"))

    op.drop_table("test_sends")

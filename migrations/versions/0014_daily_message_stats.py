"""home dashboard (issue 15 §7): per-day message counts of settled days

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

daily_message_stats: one row per settled UTC day (sent, delivered, read of the messages sent that day), so
the dashboard's 30- and 90-day windows read a few rows instead of every index entry of the window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daily_message_stats",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("read", sa.Integer(), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("daily_message_stats")

"""streaming freeze: a campaign records how far its audience freeze got

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

The audience freeze streams (app/services/sending/freeze.py): recipient rows are written chunk by chunk,
each chunk in its own transaction with the campaign's cursor, so the first batch is sent while the rest
is still being frozen, and a freeze interrupted by a crash resumes where its last committed chunk ended.
- freezing: rows are still being added (a Sending campaign does not finish while it is set);
- freeze_cursor: list/segment: the last contact identity id frozen; CSV: the last file line read;
- freeze_heartbeat_at: when the process freezing it last showed progress (its lease; NULL: free).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("freezing", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("freeze_cursor", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("freeze_heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("freeze_heartbeat_at")
        batch_op.drop_column("freeze_cursor")
        batch_op.drop_column("freezing")

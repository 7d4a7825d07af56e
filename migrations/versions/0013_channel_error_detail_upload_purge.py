"""security (issue 13): a channel's error detail for admins only; when an audience CSV's file was deleted

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-06

- channels.last_error_detail: what the API host answered to the connection test (Meta's message, or a raw
  body), shown to admins only; channels.last_error keeps Hubcast's own summary, which every role reads.
- audience_uploads.purged_at: the retention job deleted the file (its campaigns were sent, cancelled or
  deleted long enough ago); the row and its counts stay for the campaign's history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_error_detail", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=""
            )
        )
    with op.batch_alter_table("audience_uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audience_uploads", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
    with op.batch_alter_table("channels", schema=None) as batch_op:
        batch_op.drop_column("last_error_detail")

"""template quality and status reason, channel quality rating and account notice

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Issue 12, point 3: Meta's non-message webhooks (message_template_status_update,
message_template_quality_update, phone_number_quality_update, account_update) are applied, and what they
say is kept to be shown: a template's quality score and the reason its status changed, a channel's
quality rating and its latest account event in words.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("quality_score", sa.String(length=16), nullable=False, server_default=""))
        batch.add_column(sa.Column("status_reason", sa.String(length=500), nullable=False, server_default=""))
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("quality_rating", sa.String(length=16), nullable=False, server_default=""))
        batch.add_column(sa.Column("account_notice", sa.String(length=500), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("account_notice")
        batch.drop_column("quality_rating")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("status_reason")
        batch.drop_column("quality_score")

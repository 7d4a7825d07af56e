"""contacts (id, channel_flags) index for list summaries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

ix_contacts_id_flags lets a list's audience summary merge-join list_memberships with contacts from two
index-only scans, both in contact id order (about 30 MB read instead of the ~150 MB contacts heap at
1,000,000 contacts; bench/audience.py). A separate revision because 0005 had already been applied to
working databases when this index was added.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contacts_id_flags", "contacts", ["id", "channel_flags"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contacts_id_flags", table_name="contacts")

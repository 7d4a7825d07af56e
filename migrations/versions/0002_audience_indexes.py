"""audience indexes: subscribed identities per channel, list member counts and sources

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

- ix_identity_type_subscribed_contact: "contacts subscribed on channel X" (contact filters, the audience
  freeze, per-channel semi-joins) as an index-only scan instead of a pass over contact_identities.
- ix_membership_list_source: member counts and sources of every list (the Lists page) from the index.
The audience summary itself merge-joins contacts (primary key order) with ix_identity_contact_type (0001),
an index-only scan; see bench/audience.py.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_identity_type_subscribed_contact", ["channel_type", "subscribed", "contact_id"], unique=False
        )
    with op.batch_alter_table("list_memberships", schema=None) as batch_op:
        batch_op.create_index("ix_membership_list_source", ["list_id", "source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("list_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_membership_list_source")
    with op.batch_alter_table("contact_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_type_subscribed_contact")

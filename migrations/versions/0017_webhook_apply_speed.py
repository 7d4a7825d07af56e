"""webhook apply speed (issue 16 §4): unapplied status events found from a partial index

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

ix_status_event_unapplied (id) WHERE applied_at IS NULL replaces ix_webhook_status_events_applied_at: the
status applier asks for the oldest unapplied events (`applied_at IS NULL ORDER BY id LIMIT n`), and on
PostgreSQL the full index left it walking the primary key through every applied event (a pass slowed
down as the table grew: 360,000 events in a minute at 6,000/s). The partial index holds only the
backlog, is read in id order, and an event leaves it when applied instead of gaining a new entry. The
sweeper (`applied_at IS NULL AND received_at < ...`) and /metrics (count, oldest unapplied) read it too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNAPPLIED = sa.text("applied_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_status_event_unapplied",
        "webhook_status_events",
        ["id"],
        unique=False,
        sqlite_where=UNAPPLIED,
        postgresql_where=UNAPPLIED,
    )
    op.drop_index("ix_webhook_status_events_applied_at", table_name="webhook_status_events")


def downgrade() -> None:
    op.create_index("ix_webhook_status_events_applied_at", "webhook_status_events", ["applied_at"], unique=False)
    op.drop_index("ix_status_event_unapplied", table_name="webhook_status_events")

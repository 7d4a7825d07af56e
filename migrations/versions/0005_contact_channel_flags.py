"""contact channel flags kept by triggers; trigram search index on names and email

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

contacts.channel_flags holds, per contact, which channel types it has a subscribed identity on and which it
has an unsubscribed one on (app/services/audiences/channel_flags.py describes the bits):

    bit 0..3  subscribed on  whatsapp, instagram, messenger, sms   (1, 2, 4, 8)
    bit 4..7  unsubscribed on whatsapp, instagram, messenger, sms  (16, 32, 64, 128)

It is the OR, over the contact's identities, of `channel bit × (1 if subscribed else 16)`. With it the audience
summary is one pass over contacts grouped by an integer (no join to contact_identities, no per-contact
grouping), and the Contacts page's channel/subscription filters are `channel_flags IN (...)`, which
ix_contacts_channel_flags and the column's statistics serve (issue 16, items 1 and 5).

The backfill rewrites every contact row once: on a large PostgreSQL base, VACUUM contacts afterwards (or
let autovacuum do it) so the summary's index-only scans stay index-only.

Why triggers and not the services: identities are written by many paths — the contact form, the CSV import
(Core executemany), inbound STOP (inbound/opt_out.py), the sender's "user unsubscribed" outcome (a bulk
UPDATE in sending/outcomes.py), the demo seed, bench and test factories, and any future bulk SQL or COPY.
A trigger on contact_identities keeps the column right for all of them, in the same transaction, without any
of them knowing it exists.
- PostgreSQL: statement-level AFTER triggers with transition tables (one UPDATE of contacts per statement,
  so a 1,000-row executemany batch or a COPY costs one set-based update, not one per row). An INSERT can only
  add bits (OR them in); UPDATE and DELETE recompute the touched contacts from their identities, and UPDATE
  only touches contacts whose (contact_id, channel_type, subscribed) actually changed. TRUNCATE of
  contact_identities zeroes every contact's flags (TRUNCATE fires no row or DELETE trigger).
- SQLite: row-level triggers doing the same per row (SQLite has no statement-level triggers).
Rows that would not change are never rewritten (no dead tuples, HOT updates stay possible).

ix_contacts_search_trgm (PostgreSQL): a pg_trgm GIN index over first_name, last_name and email, so the
Contacts page's substring search (ILIKE '%term%') is an index search instead of a scan of the table.
pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since PostgreSQL 13: the database owner
can create it. On SQLite the index is declared with `WHERE 0`, an empty partial index that costs nothing to
keep (SQLite has no trigram index; its substring search stays a scan), so that the model declares one
schema for both databases.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One identity's bit; frozen here on purpose (a migration must not change when app code does).
_BIT = (
    "(CASE {t}.channel_type WHEN 'whatsapp' THEN 1 WHEN 'instagram' THEN 2 WHEN 'messenger' THEN 4 "
    "WHEN 'sms' THEN 8 ELSE 0 END * CASE WHEN {t}.subscribed THEN 1 ELSE 16 END)"
)

_PG_FUNCTIONS = f"""
CREATE FUNCTION hubcast_identity_flags_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contacts c SET channel_flags = c.channel_flags | n.bits
    FROM (SELECT i.contact_id, bit_or({_BIT.format(t="i")}) AS bits FROM new_rows i GROUP BY i.contact_id) n
    WHERE c.id = n.contact_id AND (c.channel_flags | n.bits) <> c.channel_flags;
    RETURN NULL;
END $$;

CREATE FUNCTION hubcast_identity_flags_recompute(touched integer[]) RETURNS void LANGUAGE sql AS $$
    UPDATE contacts c SET channel_flags = f.flags
    FROM (SELECT t.id, coalesce((SELECT bit_or({_BIT.format(t="i")}) FROM contact_identities i
                                 WHERE i.contact_id = t.id), 0) AS flags
          FROM unnest(touched) AS t(id)) f
    WHERE c.id = f.id AND c.channel_flags <> f.flags;
$$;

CREATE FUNCTION hubcast_identity_flags_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hubcast_identity_flags_recompute(ARRAY(SELECT DISTINCT contact_id FROM old_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION hubcast_identity_flags_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hubcast_identity_flags_recompute(ARRAY(
        SELECT contact_id FROM (SELECT id, contact_id, channel_type, subscribed FROM old_rows
                                EXCEPT SELECT id, contact_id, channel_type, subscribed FROM new_rows) gone
        UNION
        SELECT contact_id FROM (SELECT id, contact_id, channel_type, subscribed FROM new_rows
                                EXCEPT SELECT id, contact_id, channel_type, subscribed FROM old_rows) came));
    RETURN NULL;
END $$;

CREATE FUNCTION hubcast_identity_flags_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE contacts SET channel_flags = 0 WHERE channel_flags <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER trg_identity_flags_insert AFTER INSERT ON contact_identities
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hubcast_identity_flags_inserted();
CREATE TRIGGER trg_identity_flags_delete AFTER DELETE ON contact_identities
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hubcast_identity_flags_deleted();
CREATE TRIGGER trg_identity_flags_update AFTER UPDATE ON contact_identities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hubcast_identity_flags_updated();
CREATE TRIGGER trg_identity_flags_truncate AFTER TRUNCATE ON contact_identities
    FOR EACH STATEMENT EXECUTE FUNCTION hubcast_identity_flags_truncated();
"""

_PG_DROP = """
DROP TRIGGER IF EXISTS trg_identity_flags_truncate ON contact_identities;
DROP TRIGGER IF EXISTS trg_identity_flags_update ON contact_identities;
DROP TRIGGER IF EXISTS trg_identity_flags_delete ON contact_identities;
DROP TRIGGER IF EXISTS trg_identity_flags_insert ON contact_identities;
DROP FUNCTION IF EXISTS hubcast_identity_flags_truncated();
DROP FUNCTION IF EXISTS hubcast_identity_flags_updated();
DROP FUNCTION IF EXISTS hubcast_identity_flags_deleted();
DROP FUNCTION IF EXISTS hubcast_identity_flags_recompute(integer[]);
DROP FUNCTION IF EXISTS hubcast_identity_flags_inserted();
"""


def _sqlite_recompute(contact: str) -> str:
    return (
        f"UPDATE contacts SET channel_flags = (SELECT coalesce(sum(DISTINCT {_BIT.format(t='i')}), 0) "
        f"FROM contact_identities i WHERE i.contact_id = {contact}) WHERE id = {contact};"
    )


# sum(DISTINCT bit) of powers of two is their OR (SQLite has no bit_or aggregate).
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER trg_identity_flags_insert AFTER INSERT ON contact_identities BEGIN
        UPDATE contacts SET channel_flags = channel_flags | {_BIT.format(t="NEW")}
        WHERE id = NEW.contact_id AND (channel_flags | {_BIT.format(t="NEW")}) <> channel_flags;
    END""",
    f"""CREATE TRIGGER trg_identity_flags_delete AFTER DELETE ON contact_identities BEGIN
        {_sqlite_recompute("OLD.contact_id")}
    END""",
    f"""CREATE TRIGGER trg_identity_flags_update AFTER UPDATE OF contact_id, channel_type, subscribed
        ON contact_identities
        WHEN OLD.contact_id IS NOT NEW.contact_id OR OLD.channel_type IS NOT NEW.channel_type
             OR OLD.subscribed IS NOT NEW.subscribed BEGIN
        {_sqlite_recompute("NEW.contact_id")}
        {_sqlite_recompute("OLD.contact_id")}
    END""",
)

_TRGM_COLUMNS = ("first_name", "last_name", "email")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.add_column("contacts", sa.Column("channel_flags", sa.Integer(), nullable=False, server_default="0"))
    if postgres:
        op.execute(f"""UPDATE contacts c SET channel_flags = f.flags
            FROM (SELECT i.contact_id, bit_or({_BIT.format(t="i")}) AS flags FROM contact_identities i
                  GROUP BY i.contact_id) f
            WHERE c.id = f.contact_id AND f.flags <> 0""")
        op.execute(_PG_FUNCTIONS)
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    else:
        op.execute(f"""UPDATE contacts SET channel_flags = (SELECT coalesce(sum(DISTINCT {_BIT.format(t="i")}), 0)
            FROM contact_identities i WHERE i.contact_id = contacts.id)""")
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    op.create_index("ix_contacts_channel_flags", "contacts", ["channel_flags"], unique=False)
    op.create_index(
        "ix_contacts_search_trgm",
        "contacts",
        list(_TRGM_COLUMNS),
        unique=False,
        postgresql_using="gin",
        postgresql_ops=dict.fromkeys(_TRGM_COLUMNS, "gin_trgm_ops"),
        sqlite_where=sa.text("0"),
    )


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index("ix_contacts_search_trgm", table_name="contacts")
    op.drop_index("ix_contacts_channel_flags", table_name="contacts")
    if bind.dialect.name == "postgresql":
        op.execute(_PG_DROP)
    else:
        for name in ("trg_identity_flags_update", "trg_identity_flags_delete", "trg_identity_flags_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("channel_flags")

"""segment rules on custom fields served by an index (PostgreSQL)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

A segment rule on a custom field ("custom.tier equals gold") was `lower(custom_fields ->> 'tier') = 'gold'`:
PostgreSQL parses every candidate contact's JSON to answer it (0.39-0.6 s per live count at 1,000,000
contacts, issue 16 §5). contacts.custom_terms holds the contact's custom fields as text terms:

    '<length(key)>:<key>=<lower(value)>'   for every key whose value is not JSON null
    '<length(key)>:<key>'                  when that value is also not ''

with value = `custom_fields ->> key` exactly (raw text of numbers / nested JSON, the last of duplicate keys,
as `->>` reads them); the length prefix keeps any key unambiguous. ix_contacts_custom_terms is a GIN index
on it, and app/services/audiences/segment_sql.py writes "equals", "is one of" and "is not empty" as
`custom_terms && ARRAY[...]` on PostgreSQL: `lower(custom_fields ->> k) = v` holds exactly when the term
`len(k):k=v` is in the array. Terms longer than 500 characters are left out (a GIN entry has a size limit);
rule values are at most 200 characters and keys 64, so no term a rule looks for is ever left out.

PostgreSQL: a STORED generated column (`hubcast_custom_terms(custom_fields)`, plpgsql, about 17 µs a row,
paid when a contact is written; adding the column rewrites the table once). Stored rather than an expression
index, on purpose: the planner cannot know that a GIN overlap needs no recheck, so with an expression index
it costs the function on every row and, for a rule most contacts match, chose a sequential scan that ran it
a million times (17 s measured); on a stored array the overlap costs what it is. A document with an escaped
NUL (\u0000, which `->>` cannot read either) gets no terms instead of failing the write.

Adding the column rewrites contacts (39 s for 1,000,000 on the bench machine, index and ANALYZE included),
which also empties its visibility map: on a large base run `VACUUM contacts` afterwards (or let autovacuum
do it) so counts and name-order walks stay index-only (the Contacts page's unfiltered count read 147 ms
instead of 37-108 ms until then).

SQLite: a plain column nobody fills (rules keep the `json_extract` form there) and an empty partial index
(`WHERE 0`), as ix_contacts_search_trgm (0005) is, so models and migrations share one schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: app code builds the same terms (segment_sql.custom_term / custom_set_term).
_PG_FUNCTION = r"""
CREATE FUNCTION hubcast_custom_terms(fields json) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    k text;
    v text;
    terms text[] := '{}';
    term text;
BEGIN
    IF json_typeof(fields) IS DISTINCT FROM 'object' THEN
        RETURN terms;
    END IF;
    IF strpos(fields::text, '\u0000') > 0 THEN
        BEGIN
            PERFORM fields::jsonb;
        EXCEPTION WHEN OTHERS THEN
            RETURN terms;  -- an escaped NUL: ->> cannot read this document either
        END;
    END IF;
    -- each key once (jsonb keeps one), its value read as ->> reads it (raw text, the last duplicate)
    FOR k IN SELECT jsonb_object_keys(fields::jsonb) LOOP
        v := fields ->> k;
        CONTINUE WHEN v IS NULL;
        term := length(k) || ':' || k || '=' || lower(v);
        IF length(term) <= 500 THEN
            terms := terms || term;
        END IF;
        IF v <> '' AND length(k) <= 480 THEN
            terms := terms || (length(k) || ':' || k);
        END IF;
    END LOOP;
    RETURN terms;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(
            "ALTER TABLE contacts ADD COLUMN custom_terms text[] "
            "GENERATED ALWAYS AS (hubcast_custom_terms(custom_fields)) STORED"
        )
        op.execute("CREATE INDEX ix_contacts_custom_terms ON contacts USING gin (custom_terms)")
        op.execute("ANALYZE contacts")  # the planner's statistics for the new column
    else:
        op.add_column("contacts", sa.Column("custom_terms", sa.JSON(), nullable=True))
        op.create_index(
            "ix_contacts_custom_terms", "contacts", ["custom_terms"], unique=False, sqlite_where=sa.text("0")
        )


def downgrade() -> None:
    op.drop_index("ix_contacts_custom_terms", table_name="contacts")
    # In place on SQLite too (3.35+): a batch copy of contacts would trip 0005's triggers on it.
    op.execute("ALTER TABLE contacts DROP COLUMN custom_terms")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hubcast_custom_terms(json)")

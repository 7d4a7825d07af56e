"""Benchmark: the Contacts page (search and every filter) and segment live counts at 1,000,000 contacts.

Issue 16 item 5: name/phone/email search and every filter of the Contacts page ≤ 200 ms on PostgreSQL,
segment live counts ≤ 300 ms. Reuses the base bench/audience.py builds (same database, `--pg-db`), times
`contacts_page()` (first page of 50 and its total, what the page shows) for each case, beside a baseline
measured in the same run: the same function with the conditions it built before migration 0005 (EXISTS
lookups in contact_identities for channel filters, an OR with a sub-select for the search, which no index
serves) and, past the 10,000 cap, every match sorted (no bounded walk of the name order). Both must return
the same rows and total. Segment live counts: bench/audience.py's two segments and CUSTOM_SEGMENTS (custom-field
rules), against the same counts with every custom-field rule read with `->>` (before migration 0016); both
must agree. Appends to bench/results/contacts_search.md.

    .venv/bin/python bench/contacts_search.py --pg-db hubcast_audience_bench
    .venv/bin/python bench/contacts_search.py --runs 5 --baseline-runs 1
    .venv/bin/python bench/contacts_search.py --at-revision 0017   # custom_fields as json (before 0018), to compare
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

from sqlalchemy import and_, exists, or_, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.models import Contact, ContactIdentity  # noqa: E402
from app.services.audiences import contact_search, segment_sql, segments  # noqa: E402
from bench.audience import SEGMENTS, build_pg, ensure_base, ensure_fixtures, machine, pg_bench_url  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "contacts_search.md"

# Segment live counts with custom-field rules beyond bench/audience.py's two (migration 0016 serves equals,
# "is one of" and "is not empty" from ix_contacts_custom_terms on PostgreSQL; the others still read ->>).
CUSTOM_SEGMENTS = {
    "custom equals, alone (25%)": ("all", [{"field": "custom.tier", "op": "equals", "value": "Gold"}]),
    "custom is one of + country (~20%)": (
        "all",
        [
            {"field": "custom.tier", "op": "in", "value": ["gold", "silver"]},
            {"field": "country", "op": "in", "value": ["FR", "DE"]},
        ],
    ),
    "custom equals OR country (any)": (
        "any",
        [
            {"field": "custom.tier", "op": "equals", "value": "gold"},
            {"field": "country", "op": "equals", "value": "FR"},
        ],
    ),
    "custom is not empty (whole base)": ("all", [{"field": "custom.signup", "op": "is_not_empty"}]),
    "custom contains (not indexed)": ("all", [{"field": "custom.tier", "op": "contains", "value": "old"}]),
    "custom after (date, not indexed)": ("all", [{"field": "custom.signup", "op": "after", "value": "2024-06-30"}]),
}

# (label, contacts_page keyword arguments)
CASES = [
    ("no filter", {}),
    ("name: last name (~200 hits)", {"search": "Last1234"}),
    ("name: first name (11 hits)", {"search": "First77777"}),
    ("name: 4 letters in 111,111 first names (10,000+)", {"search": "rst1"}),
    ("name: 4 letters in 200,000 last names, late in name order (10,000+)", {"search": "ast4"}),
    ("name: no match", {"search": "zzqx"}),
    ("name: first + last with a space", {"search": "First4242 Last"}),
    ("name: 2 letters", {"search": "La"}),
    ("email", {"search": "user31337@example.com"}),
    ("phone: full number", {"search": "+1 555 0031 3370"}),
    ("phone: prefix (10,000+)", {"search": "+15550004"}),
    ("instagram id typed whole", {"search": "@IG"}),  # replaced by a real id at run time
    ("country FR", {"country": "FR"}),
    ("channel Instagram", {"channel": "instagram"}),
    ("subscribed (any channel)", {"subscription": "subscribed"}),
    ("unsubscribed (no channel)", {"subscription": "unsubscribed"}),
    ("Messenger, unsubscribed (rare)", {"channel": "messenger", "subscription": "unsubscribed"}),
    ("SMS, subscribed, country DE", {"channel": "sms", "subscription": "subscribed", "country": "DE"}),
    ("GB, unsubscribed", {"country": "GB", "subscription": "unsubscribed"}),
    ("name + WhatsApp subscribed", {"search": "Last1234", "channel": "whatsapp", "subscription": "subscribed"}),
]


# --- the baseline: the conditions contacts_page built before migration 0005 ------------------------------


def _legacy_identity_exists(channel: str, subscribed: bool | None):
    cond = [ContactIdentity.contact_id == Contact.id]
    if channel:
        cond.append(ContactIdentity.channel_type == channel)
    if subscribed is not None:
        cond.append(ContactIdentity.subscribed == subscribed)
    return exists().where(and_(*cond))


def _legacy_text_match(term: str):
    like = f"%{term}%"
    conds = [Contact.first_name.ilike(like), Contact.last_name.ilike(like)]
    if " " in term:
        conds.append((Contact.first_name + " " + Contact.last_name).ilike(like))
    if "@" in term:
        conds.append(Contact.email.ilike(like))
    conds.append(
        Contact.id.in_(
            select(ContactIdentity.contact_id).where(
                ContactIdentity.channel_type.in_(("instagram", "messenger")), ContactIdentity.address == term
            )
        )
    )
    return or_(*conds)


def legacy_conditions(session, search: str, country: str, channel: str, subscription: str) -> list:
    conds = []
    term = (search or "").strip()[:200]
    if term:
        conds.append(
            contact_search._number_prefix_match(term)
            if contact_search._NUMBER_TERM.match(term) and sum(c.isdigit() for c in term) >= 3
            else _legacy_text_match(term)
        )
    if country:
        conds.append(Contact.country == country)
    if subscription == "subscribed":
        conds.append(_legacy_identity_exists(channel, True))
    elif subscription == "unsubscribed":
        conds.append(
            _legacy_identity_exists(channel, False)
            if channel
            else and_(_legacy_identity_exists("", None), ~_legacy_identity_exists("", True))
        )
    elif channel:
        conds.append(_legacy_identity_exists(channel, None))
    return conds


# --- measuring -----------------------------------------------------------------------------------------


def timed(fn, runs: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def page_call(session, actor, kwargs):
    def call():
        page = contact_search.contacts_page(session=session, actor=actor, page_size=50, **kwargs)
        session.rollback()
        return [r["id"] for r in page.rows], page.total

    return call


def measure(engine, runs: int, baseline_runs: int) -> list[dict]:
    rows = []
    current, prefix = contact_search._contact_conditions, contact_search._page_in_name_prefix
    by_names = contact_search._page_by_last_names
    with Session(engine, expire_on_commit=False) as session:
        actor, _targets = ensure_fixtures(session)
        handle = session.execute(
            select(ContactIdentity.address)
            .where(ContactIdentity.channel_type == "instagram")
            .order_by(ContactIdentity.id.desc())
            .limit(1)
        ).scalar_one()
        for label, kwargs in CASES:
            kwargs = {k: (handle if v == "@IG" else v) for k, v in kwargs.items()}
            call = page_call(session, actor, kwargs)
            call()  # warm
            fast, (ids, total) = timed(call, runs)
            contact_search._contact_conditions = legacy_conditions
            contact_search._page_in_name_prefix = lambda *args: []  # past the cap: every match sorted, as before
            contact_search._page_by_last_names = lambda *args: None
            try:
                slow, (old_ids, old_total) = timed(call, baseline_runs)
            finally:
                contact_search._contact_conditions, contact_search._page_in_name_prefix = current, prefix
                contact_search._page_by_last_names = by_names
            assert (ids, total) == (old_ids, old_total), (label, total, old_total)
            load = os.getloadavg()[0]
            rows.append(
                {
                    "what": f"Contacts page: {label}",
                    "result": f"{total:,}",
                    "ms": fast * 1000,
                    "baseline_ms": slow * 1000,
                    "load": load,
                    "target": 200,
                }
            )
            print(
                f"  {label:<60} total {total:>7,}  {fast * 1000:8.1f} ms  baseline {slow * 1000:8.1f} ms"
                f"  load {load:.1f}",
                flush=True,
            )
        indexed = segment_sql._indexed_custom
        for label, (match, rules) in {**SEGMENTS, **CUSTOM_SEGMENTS}.items():

            def count(rules=rules, match=match) -> int:
                n = segments.count_segment(session=session, actor=actor, rules=rules, match=match)
                session.rollback()
                return n

            count()
            fast, n = timed(count, runs)
            # Baseline: every custom-field rule read with ->> (the conditions before migration 0016).
            segment_sql._indexed_custom = lambda key, terms, default: default
            try:
                slow, old_n = timed(count, baseline_runs)
            finally:
                segment_sql._indexed_custom = indexed
            assert n == old_n, (label, n, old_n)
            load = os.getloadavg()[0]
            rows.append(
                {
                    "what": f"segment live count: {label}",
                    "result": f"{n:,}",
                    "ms": fast * 1000,
                    "baseline_ms": slow * 1000,
                    "load": load,
                    "target": 300,
                }
            )
            print(
                f"  live count {label:<36} {n:>9,}  {fast * 1000:8.1f} ms  baseline {slow * 1000:8.1f} ms"
                f"  load {load:.1f}",
                flush=True,
            )
    return rows


def report(rows: list[dict], runs: int, baseline_runs: int, version: str, contacts: int) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; PostgreSQL {version}; {contacts:,} contacts (bench/audience.py's base)",
        f"Median of {runs} runs, baseline {baseline_runs} (Contacts page: the conditions before migration 0005, "
        "same function, same run; segment counts: custom-field rules read with ->> as before migration 0016; "
        "both return the same page / count). Targets (issue 16 §5): Contacts page ≤ 200 ms, "
        "segment live counts ≤ 300 ms. Load = 1-min load average right after the row was measured.",
        "",
        "| what | total | measured (ms) | baseline (ms) | target (ms) | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        base = f"{r['baseline_ms']:.1f}" if r["baseline_ms"] is not None else "— (query unchanged)"
        lines.append(f"| {r['what']} | {r['result']} | {r['ms']:.1f} | {base} | {r['target']} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def migrate_base(engine, url: str, revision: str | None) -> float:
    """Move the base to `revision` (head when None), down or up; returns the seconds spent when it moved.

    A migration that rewrites contacts (0016, 0018) empties its visibility map: VACUUM ANALYZE follows, as
    the migrations' notes advise operators, so index-only counts are measured as a settled base has them."""
    from alembic import command
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config

    cfg = alembic_config(url)
    with engine.connect() as conn:
        current = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar_one() and (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
        )
    script = ScriptDirectory.from_config(cfg)
    target = revision or script.get_current_head()
    if current == target:
        return 0.0
    started = time.perf_counter()
    if current and revision and any(rev.revision == revision for rev in script.iterate_revisions(current, "base")):
        command.downgrade(cfg, revision)
    elif revision:
        command.upgrade(cfg, revision)
    else:
        upgrade_to_head(url)
    if current:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE contacts"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=1)
    parser.add_argument("--pg-db", default=None, help="database name (default: bench/audience.py's)")
    parser.add_argument(
        "--at-revision",
        default=None,
        help="measure the base migrated to this revision instead of head (e.g. 0017: custom_fields as json, "
        "before 0018), then VACUUM ANALYZE contacts; the next run without it migrates back to head",
    )
    args = parser.parse_args()
    base = os.environ.get("BENCH_PG_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    url = pg_bench_url(base, args.pg_db)
    engine = make_engine(url)
    migrated_s = migrate_base(engine, url, args.at_revision)
    if migrated_s:
        print(f"migrated to {args.at_revision or 'head'} in {migrated_s:.1f} s (VACUUM ANALYZE contacts included)")
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
    built = ensure_base(engine, args.contacts, build_pg)
    print(f"PostgreSQL base: {args.contacts:,} contacts" + (f" (built in {built:.0f} s)" if built else " (reused)"))
    rows = measure(engine, args.runs, args.baseline_runs)
    engine.dispose()
    table = report(rows, args.runs, args.baseline_runs, version, args.contacts)
    print()
    print(table)
    new = not RESULTS.exists()
    with open(RESULTS, "a", encoding="utf-8") as out:
        if new:
            out.write("# Contacts page and segment live counts benchmark (bench/contacts_search.py)\n\n")
        out.write(table + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

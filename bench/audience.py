"""Benchmark: the audience summary (SPEC S15; issue 16 §1) on a 1,000,000-contact base.

Builds (once; reused while the row counts match) a base of N contacts with ~1.3 identities each in a
dedicated PostgreSQL database (`hubcast_bench` or `--pg-db`, never the test database) and N/10 on SQLite,
then times `audience_summary()` (which reads `contacts.channel_flags`, migration 0005) for two-rule
segments and a list, against a baseline measured in the same run: the same function counting with the query
it used before the flags column (identities joined and grouped per contact, `reference_summary_row`).
Both must give identical figures. `--naive` adds the first version's baseline (ids and identities loaded
into Python, 25-95 s at 1,000,000). Prints a table and appends it to bench/results/audience.md with the
machine and the load average after each row.

    .venv/bin/python bench/audience.py                      # 1,000,000 on PostgreSQL, 100,000 on SQLite
    .venv/bin/python bench/audience.py --pg-db hubcast_audience_bench --runs 7 --baseline-runs 3
    .venv/bin/python bench/audience.py --contacts 200000 --runs 5 --no-sqlite
    BENCH_PG_URL=postgresql+psycopg://user@host:5432/postgres .venv/bin/python bench/audience.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.models import Contact, ContactIdentity, ContactList, Segment, User  # noqa: E402
from app.services.audiences import summary as audience_service  # noqa: E402
from app.services.audiences.summary import (  # noqa: E402
    CHANNEL_TYPES,
    SUMMARY_COLUMNS,
    audience_contact_ids,
    audience_summary,
)

BENCH_DB = "hubcast_bench"
RESULTS = ROOT / "bench" / "results" / "audience.md"
COUNTRIES = ["AU", "FR", "DE", "ES", "GB", "US", "BR", "IN", "IT", "NL"]
TIERS = ["gold", "silver", "bronze", "none"]

# Two-rule segments: one that holds the whole base (the worst case the issue names) and a selective one.
SEGMENTS = {
    "segment, whole base (2 rules)": (
        "all",
        [{"field": "created_at", "op": "after", "value": "2000-01-01"}, {"field": "country", "op": "is_not_empty"}],
    ),
    "segment, ~10% (2 rules)": (
        "all",
        [
            {"field": "country", "op": "in", "value": ["FR", "DE", "ES", "GB"]},
            {"field": "custom.tier", "op": "equals", "value": "gold"},
        ],
    ),
}
LIST_NAME = "Half the base"


# --- data ---------------------------------------------------------------------------------------


def pg_bench_url(base_url: str, database: str | None = None) -> str:
    name = database or BENCH_DB
    url = make_url(base_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _reset(engine) -> None:
    with engine.begin() as conn:
        for table in ("list_memberships", "contact_lists", "segments", "contact_identities", "contacts"):
            conn.execute(text(f"DELETE FROM {table}"))


def build_pg(engine, n: int) -> None:
    """Generated in SQL (generate_series) so a million rows take seconds, not minutes; hashtext() is a
    deterministic pseudo-random source, so every run measures the same data."""
    _reset(engine)
    h = "abs(hashtext(g::text || '{salt}'))"
    with engine.begin() as conn:
        conn.execute(
            text(f"""
            INSERT INTO contacts (id, first_name, last_name, email, country, city, language, custom_fields,
                                  created_at, updated_at)
            SELECT g, 'First' || g, 'Last' || ({h.format(salt="l")} % 5000), 'user' || g || '@example.com',
                   (ARRAY{COUNTRIES})[1 + {h.format(salt="c")} % {len(COUNTRIES)}],
                   'City' || ({h.format(salt="t")} % 300),
                   (ARRAY['en','fr','de','es','pt'])[1 + {h.format(salt="g")} % 5],
                   json_build_object('tier', (ARRAY{TIERS})[1 + {h.format(salt="r")} % 4],
                                     'signup', to_char(date '2020-01-01' + {h.format(salt="s")} % 1800, 'YYYY-MM-DD')),
                   timestamptz '2023-01-01 00:00+00' + ({h.format(salt="d")} % 1000) * interval '1 day', now()
            FROM generate_series(1, {n}) g""")
        )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('contacts', 'id'), (SELECT max(id) FROM contacts))"))
        # 97% WhatsApp (8% of them unsubscribed), the rest SMS only; 15% also Instagram, 10% also Messenger.
        conn.execute(
            text(f"""
            INSERT INTO contact_identities (contact_id, channel_type, address, subscribed, subscription_changed_at,
                                            created_at)
            SELECT g, CASE WHEN {h.format(salt="k")} % 100 < 97 THEN 'whatsapp' ELSE 'sms' END,
                   '+1555' || lpad(g::text, 8, '0'), {h.format(salt="u")} % 100 >= 8, now(), now()
            FROM generate_series(1, {n}) g
            UNION ALL
            SELECT g, 'instagram', 'ig_' || g, true, now(), now() FROM generate_series(1, {n}) g
            WHERE {h.format(salt="i")} % 100 < 15
            UNION ALL
            SELECT g, 'messenger', 'psid_' || g, {h.format(salt="v")} % 100 >= 5, now(), now()
            FROM generate_series(1, {n}) g WHERE {h.format(salt="m")} % 100 < 10""")
        )
        conn.execute(
            text(
                "INSERT INTO contact_lists (name, description, created_at, updated_at) "
                f"VALUES ('{LIST_NAME}', '', now(), now())"
            )
        )
        conn.execute(
            text(f"""
            INSERT INTO list_memberships (list_id, contact_id, source, added_at)
            SELECT (SELECT id FROM contact_lists WHERE name = '{LIST_NAME}'), g, 'import', now()
            FROM generate_series(1, {n}) g WHERE {h.format(salt="x")} % 2 = 0""")
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # The identities' trigger (0005) rewrote every contact row once to set its channel_flags; the CSV
        # import writes the flags up front and leaves no such second version, so compact the table to the
        # state an import leaves (one row version per contact).
        conn.execute(text("VACUUM FULL contacts"))
        conn.execute(text("VACUUM ANALYZE"))


def build_sqlite(engine, n: int) -> None:
    """Python-generated rows through Core executemany (SQLite has no generate_series by default)."""
    import random

    _reset(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    contacts, identities, members = [], [], []
    for g in range(1, n + 1):
        contacts.append(
            {
                "id": g,
                "first_name": f"First{g}",
                "last_name": f"Last{rng.randrange(5000)}",
                "email": f"user{g}@example.com",
                "country": rng.choice(COUNTRIES),
                "city": f"City{rng.randrange(300)}",
                "language": rng.choice(["en", "fr", "de", "es", "pt"]),
                "custom_fields": {
                    "tier": rng.choice(TIERS),
                    "signup": f"202{rng.randrange(5)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
                },
                "created_at": datetime(2023, 1, 1, tzinfo=UTC).replace(day=1 + rng.randrange(28)),
                "updated_at": now,
            }
        )
        kind = "whatsapp" if rng.random() < 0.97 else "sms"
        identities.append(
            {
                "contact_id": g,
                "channel_type": kind,
                "address": f"+1555{g:08d}",
                "subscribed": rng.random() >= 0.08,
                "subscription_changed_at": now,
                "created_at": now,
            }
        )
        if rng.random() < 0.15:
            identities.append(
                {
                    "contact_id": g,
                    "channel_type": "instagram",
                    "address": f"ig_{g}",
                    "subscribed": True,
                    "subscription_changed_at": now,
                    "created_at": now,
                }
            )
        if rng.random() < 0.10:
            identities.append(
                {
                    "contact_id": g,
                    "channel_type": "messenger",
                    "address": f"psid_{g}",
                    "subscribed": rng.random() >= 0.05,
                    "subscription_changed_at": now,
                    "created_at": now,
                }
            )
        if rng.random() < 0.5:
            members.append(g)
    with Session(engine) as session:
        session.execute(Contact.__table__.insert(), contacts)
        session.execute(ContactIdentity.__table__.insert(), identities)
        contact_list = ContactList(name=LIST_NAME)
        session.add(contact_list)
        session.flush()
        from app.models import ListMembership

        session.execute(
            ListMembership.__table__.insert(),
            [{"list_id": contact_list.id, "contact_id": g, "source": "import", "added_at": now} for g in members],
        )
        session.commit()
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))


def ensure_base(engine, n: int, build) -> float:
    if _count(engine, "contacts") == n and _count(engine, "contact_lists") == 1:
        return 0.0
    started = time.perf_counter()
    build(engine, n)
    return time.perf_counter() - started


def ensure_fixtures(session: Session) -> tuple[User, dict[str, tuple[str, int]]]:
    actor = session.execute(select(User).where(User.email == "bench@example.com")).scalar_one_or_none()
    if actor is None:
        actor = User(email="bench@example.com", role="basic", password_hash="-")
        session.add(actor)
    targets: dict[str, tuple[str, int]] = {}
    for label, (match, rules) in SEGMENTS.items():
        segment = session.execute(select(Segment).where(Segment.name == label)).scalar_one_or_none()
        if segment is None:
            segment = Segment(name=label, match=match, rules=rules)
            session.add(segment)
            session.flush()
        targets[label] = ("segment", segment.id)
    list_id = session.execute(select(ContactList.id).where(ContactList.name == LIST_NAME)).scalar_one()
    targets["list, ~50%"] = ("list", list_id)
    session.commit()
    return actor, targets


# --- the two ways to summarise ---------------------------------------------------------------------


def naive_summary(session: Session, kind: str, ref_id: int) -> dict:
    """Baseline: what a first version would do: fetch the ids, then the identities, count in Python."""
    ids = [row[0] for row in session.execute(audience_contact_ids(kind, ref_id, session=session))]
    per_contact: dict[int, set[str]] = {}
    has_whatsapp: set[int] = set()
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        for cid, kind_, subscribed in session.execute(
            select(ContactIdentity.contact_id, ContactIdentity.channel_type, ContactIdentity.subscribed).where(
                ContactIdentity.contact_id.in_(chunk)
            )
        ):
            if kind_ == "whatsapp":
                has_whatsapp.add(cid)
            if subscribed:
                per_contact.setdefault(cid, set()).add(kind_)
    counts = {t: sum(1 for kinds in per_contact.values() if t in kinds) for t in CHANNEL_TYPES}
    return {"total": len(ids), "reach": counts["whatsapp"], **counts}


def timed(fn, runs: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def reference_counts(session: Session, ids) -> dict[str, int]:
    row = audience_service.reference_summary_row(session, ids)
    return {name: int(getattr(row, name)) for name in SUMMARY_COLUMNS}


def reference_summary(session: Session, actor: User, kind: str, ref_id: int):
    """audience_summary() counting with the query it used before the flags column (same run, same code path
    otherwise): the baseline."""
    histogram, counts = audience_service.flags_histogram, audience_service.counts_from_flags
    audience_service.flags_histogram = lambda session, ids: (session, ids)
    audience_service.counts_from_flags = lambda args: reference_counts(*args)
    try:
        return audience_service.audience_summary(session=session, actor=actor, kind=kind, ref_id=ref_id)
    finally:
        audience_service.flags_histogram, audience_service.counts_from_flags = histogram, counts


def _backend_cpu(pid: int) -> float | None:
    """utime + stime of a local PostgreSQL backend, in seconds (None when /proc does not show it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serial_cpu_ms(session: Session, fn, runs: int = 5) -> float | None:
    """CPU the PostgreSQL backend spends on `fn`'s statement run serially (no parallel workers), averaged:
    a figure the machine's load does not inflate, unlike wall time. Local servers only (reads /proc).
    On SQLite, this process's CPU time (the statement runs in it)."""
    if session.get_bind().dialect.name == "sqlite":  # in this process: its CPU time is the statement's
        started = time.process_time()
        for _ in range(runs):
            fn()
            session.rollback()
        return 1000 * (time.process_time() - started) / runs
    if session.get_bind().dialect.name != "postgresql":
        return None
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    session.rollback()
    before = _backend_cpu(pid)
    if before is None:
        return None
    for _ in range(runs):
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        fn()
        session.rollback()
    return 1000 * (_backend_cpu(pid) - before) / runs


def measure(engine, label: str, runs: int, baseline_runs: int, naive: bool) -> list[dict]:
    rows = []
    with Session(engine, expire_on_commit=False) as session:
        actor, targets = ensure_fixtures(session)
        for name, (kind, ref_id) in targets.items():

            def fast_call(kind=kind, ref_id=ref_id):
                result = audience_summary(session=session, actor=actor, kind=kind, ref_id=ref_id)
                session.rollback()
                return result

            def reference_call(kind=kind, ref_id=ref_id):
                result = reference_summary(session, actor, kind, ref_id)
                session.rollback()
                return result

            fast_call()  # warm the cache once
            fast, summary = timed(fast_call, runs)
            slow, reference = timed(reference_call, baseline_runs)
            assert summary.as_dict() == reference.as_dict(), (summary, reference)
            ids = audience_contact_ids(kind, ref_id, session=session)
            cpu = (
                serial_cpu_ms(session, lambda ids=ids: audience_service.flags_histogram(session, ids)),
                serial_cpu_ms(session, lambda ids=ids: audience_service.reference_summary_row(session, ids)),
            )
            row = {
                "db": label,
                "audience": name,
                "contacts": summary.total,
                "reach": summary.reach,
                "summary_ms": fast * 1000,
                "baseline_ms": slow * 1000,
                "naive_ms": None,
                "load": os.getloadavg()[0],
                "cpu_ms": cpu,
            }
            if naive:
                naive_s, counted = timed(lambda kind=kind, ref_id=ref_id: naive_summary(session, kind, ref_id), 1)
                assert (counted["total"], counted["reach"]) == (summary.total, summary.reach), (counted, summary)
                row["naive_ms"] = naive_s * 1000
            rows.append(row)
            print(
                f"  {label:<28} {name:<32} {summary.total:>9,} contacts  summary {fast * 1000:8.1f} ms  "
                f"baseline {slow * 1000:9.1f} ms  ({slow / fast:5.1f}x)  load {row['load']:.1f}  "
                f"serial CPU {_cpu_text(cpu)}",
                flush=True,
            )
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f} when reported" if hasattr(os, "getloadavg") else ""
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs{mem}, "
        f"Python {platform.python_version()}{load}"
    )


def _cpu_text(cpu: tuple[float | None, float | None]) -> str:
    return "—" if cpu[0] is None else f"{cpu[0]:.0f} / {cpu[1]:.0f}"


def report(rows: list[dict], runs: int, baseline_runs: int, versions: dict[str, str]) -> str:
    naive = any(r["naive_ms"] is not None for r in rows)
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        f"Median of {runs} runs for the summary (contacts.channel_flags, migration 0005), {baseline_runs} for the "
        "baseline: the same audience_summary() counting with the query it used before the flags column "
        "(identities joined and grouped per contact), in the same run; both gave identical figures. "
        "Target (issue 16 §1): ≤ 300 ms on PostgreSQL at 1,000,000 contacts and on SQLite at 100,000. "
        "Load = 1-min load average right after the row was measured (2 cores). Serial CPU = CPU time the "
        "PostgreSQL backend spends on the counting statement with parallel workers off (mean of 5; load does "
        "not inflate it; SQLite: this process's CPU): flags / previous query.",
        "",
        "| database | audience | contacts | reach | summary (ms) | baseline: previous query (ms) | speed-up | load |"
        " serial CPU (ms) |" + (" naive Python (ms) |" if naive else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if naive else ""),
    ]
    for r in rows:
        lines.append(
            f"| {r['db']} | {r['audience']} | {r['contacts']:,} | {r['reach']:,} | {r['summary_ms']:.1f} | "
            f"{r['baseline_ms']:.1f} | {r['baseline_ms'] / r['summary_ms']:.1f}x | {r['load']:.1f} | "
            f"{_cpu_text(r['cpu_ms'])} |"
            + (f" {r['naive_ms']:.0f} |" if r["naive_ms"] is not None else (" — |" if naive else ""))
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000, help="PostgreSQL base size")
    parser.add_argument("--sqlite-contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--naive", action="store_true", help="also time the first version (load into Python)")
    parser.add_argument("--pg-db", default=None, help=f"PostgreSQL database for the base (default {BENCH_DB})")
    parser.add_argument("--sqlite-path", default=str(Path(tempfile.gettempdir()) / "hubcast_bench_audience.db"))
    args = parser.parse_args()

    rows, versions = [], {}
    if not args.no_postgres:
        base = os.environ.get("BENCH_PG_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        url = pg_bench_url(base, args.pg_db)
        upgrade_to_head(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            versions["PostgreSQL"] = conn.execute(text("SHOW server_version")).scalar_one()
        built = ensure_base(engine, args.contacts, build_pg)
        print(f"PostgreSQL base: {args.contacts:,} contacts" + (f" (built in {built:.0f} s)" if built else " (reused)"))
        rows += measure(engine, f"PostgreSQL {versions['PostgreSQL']}", args.runs, args.baseline_runs, args.naive)
        engine.dispose()
    if not args.no_sqlite:
        url = f"sqlite:///{args.sqlite_path}"
        upgrade_to_head(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            versions["SQLite"] = conn.execute(text("SELECT sqlite_version()")).scalar_one()
        built = ensure_base(engine, args.sqlite_contacts, build_sqlite)
        print(
            f"SQLite base: {args.sqlite_contacts:,} contacts" + (f" (built in {built:.0f} s)" if built else " (reused)")
        )
        rows += measure(engine, f"SQLite {versions['SQLite']}", args.runs, args.baseline_runs, args.naive)
        engine.dispose()

    table = report(rows, args.runs, args.baseline_runs, versions)
    print()
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with open(RESULTS, "a", encoding="utf-8") as out:
        if new:
            out.write("# Audience summary benchmark (bench/audience.py)\n\n")
        out.write(table + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Benchmark: the home dashboard's queries (issue 15 §7) on 1,000,000 contacts and 5,000,000 recipient rows.

Builds (once; reused while the row counts match) a PostgreSQL database (`hubcast_dashboard_bench` or
`--pg-db`, never the test database) with generate_series: 1,000,000 contacts with a WhatsApp identity each
(8% unsubscribed at some time in the last year), 500 campaigns of 10,000 recipients sent over the last 365
days (so a 90-day window holds ~1,250,000 rows), statuses 43% read / 30% delivered / 25% sent / 2% failed,
and a reply from 5% of the recipients. Then times each query of app/services/campaigns/dashboard.py for
the 7, 30 and 90-day windows, and the whole `dashboard()` call, against two baselines measured in the same
run on the same data: the schema before migration 0011 (its indexes dropped inside a transaction that is
rolled back; PostgreSQL DDL is transactional), and no time index at all (0009's ix_recipient_sent_at dropped
too: a scan of the table). Every variant must return the same figures. Prints a table and appends it to
bench/results/dashboard.md with the machine and the load average.

    .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --runs 7 --baseline-runs 2
    BENCH_PG_URL=postgresql+psycopg://user@host:5432/postgres .venv/bin/python bench/dashboard.py
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

from sqlalchemy import delete, select, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.models import DailyMessageStats, User  # noqa: E402
from app.services.campaigns import dashboard as dash  # noqa: E402
from app.services.campaigns.daily_stats import fill_settled_days  # noqa: E402
from bench.audience import machine, pg_bench_url, serial_cpu_ms  # noqa: E402

BENCH_DB = "hubcast_dashboard_bench"
RESULTS = ROOT / "bench" / "results" / "dashboard.md"
CAMPAIGNS, PER_CAMPAIGN = 500, 10_000
# Migration 0011's indexes, and 0009's index on sent_at alone (dropped too for the "no index" baseline).
INDEXES_0011 = (
    "ix_recipient_sent_status",
    "ix_recipient_failed_at",
    "ix_inbound_received_at",
    "ix_inbound_received_campaign",  # 0015: replies to campaign messages per day (the "before" drops it too)
    "ix_identity_whatsapp_opt_out",
)
INDEX_0009 = "ix_recipient_sent_at"


def _count(conn, table: str) -> int:
    return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def build(engine, contacts: int) -> None:
    """generate_series fills everything in SQL; hashtext() is a deterministic pseudo-random source. The big
    tables' secondary indexes are dropped during the load and rebuilt after (much faster), and the contacts'
    channel_flags are written up front with the identities' triggers off for that one INSERT (as the CSV
    import writes them; the trigger's per-contact UPDATE of 1,000,000 rows took over 10 minutes here)."""
    h = "abs(hashtext(g::text || '{salt}'))"
    now = "date_trunc('hour', now())"
    with engine.begin() as conn:
        for table in ("inbound_messages", "campaign_recipients", "campaigns", "contact_identities", "contacts"):
            conn.execute(text(f"TRUNCATE {table} CASCADE"))
        conn.execute(text("DELETE FROM channels"))
        conn.execute(
            text(
                "INSERT INTO channels (id, name, kind, phone_number_id, business_account_id, display_phone_number, "
                "access_token, app_secret, verify_token, api_base_url, api_version, messages_per_second, status, "
                "last_error, created_at, updated_at, messaging_limit_tier, quality_rating) VALUES "
                "(1, 'Main number', 'whatsapp_cloud', '1001', '2001', '+1 555 0100', '', '', '', "
                "'https://graph.facebook.com', 'v23.0', 80, 'connected', '', now(), now(), 'TIER_100K', 'GREEN'), "
                "(2, 'Support line', 'whatsapp_cloud', '1002', '2001', '+1 555 0101', '', '', '', "
                "'https://graph.facebook.com', 'v23.0', 80, 'connected', '', now(), now(), 'TIER_10K', 'YELLOW')"
            )
        )
        dropped = []
        for table in ("contacts", "contact_identities", "campaign_recipients"):
            for name, definition in conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass))"
                ),
                {"t": table},
            ).all():
                conn.execute(text(f'DROP INDEX "{name}"'))
                dropped.append(definition)
        conn.execute(text("ALTER TABLE campaign_recipients DROP CONSTRAINT uq_recipient_campaign_address"))
        subscribed = f"{h.format(salt='u')} % 100 >= 8"
        conn.execute(
            text(f"""
            INSERT INTO contacts (id, first_name, last_name, email, country, city, language, custom_fields,
                                  created_at, updated_at, channel_flags)
            SELECT g, 'First' || g, 'Last' || g, 'user' || g || '@example.com', 'FR', '', 'fr', '{{}}', now(), now(),
                   CASE WHEN {subscribed} THEN 1 ELSE 16 END
            FROM generate_series(1, {contacts}) g""")
        )
        conn.execute(text("ALTER TABLE contact_identities DISABLE TRIGGER USER"))
        conn.execute(
            text(f"""
            INSERT INTO contact_identities (contact_id, channel_type, address, subscribed, subscription_changed_at,
                                            created_at)
            SELECT g, 'whatsapp', '+1555' || lpad(g::text, 8, '0'), {subscribed},
                   {now} - ({h.format(salt="t")} % (365 * 24)) * interval '1 hour', now()
            FROM generate_series(1, {contacts}) g""")
        )
        conn.execute(text("ALTER TABLE contact_identities ENABLE TRIGGER USER"))
        # Campaign c started (CAMPAIGNS - c) * 365 / CAMPAIGNS days ago; most Sent, a few paused/failed/sending.
        conn.execute(
            text(f"""
            INSERT INTO campaigns (id, name, status, wizard_step, audience_kind, channel_id, variable_mapping, timezone,
                                   pause_reason, created_at, updated_at, started_at, finished_at, freezing,
                                   freeze_cursor, total_recipients, queued_count, sent_count, delivered_count,
                                   read_count, failed_count, unknown_count, replied_count, limited_count)
            SELECT c, 'Campaign ' || c,
                   CASE WHEN c % 97 = 0 THEN 'paused' WHEN c % 89 = 0 THEN 'failed'
                        WHEN c = {CAMPAIGNS} THEN 'sending' ELSE 'sent' END,
                   3, 'list', 1 + c % 2, '{{}}', 'UTC',
                   CASE WHEN c % 97 = 0 THEN 'Paused automatically: too many messages failed' ELSE '' END,
                   {now} - (({CAMPAIGNS} - c) * 365 / {CAMPAIGNS} + 1) * interval '1 day',
                   {now} - (({CAMPAIGNS} - c) * 365 / {CAMPAIGNS}) * interval '1 day',
                   {now} - (({CAMPAIGNS} - c) * 365 / {CAMPAIGNS}) * interval '1 day' - interval '3 hours',
                   {now} - (({CAMPAIGNS} - c) * 365 / {CAMPAIGNS}) * interval '1 day',
                   false, 0, {PER_CAMPAIGN}, 0, 2500, 3000, 4300, 200, 0, 500, 0
            FROM generate_series(1, {CAMPAIGNS}) c""")
        )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('campaigns', 'id'), (SELECT max(id) FROM campaigns))"))
        n = CAMPAIGNS * PER_CAMPAIGN
        hx = h.replace("g::text", "x.g::text")
        conn.execute(
            text(f"""
            INSERT INTO campaign_recipients (id, campaign_id, address, contact_id, variables, status, message_id,
                                             error_title, attempts, sent_at, delivered_at, read_at, failed_at, updated_at)
            SELECT x.g, x.cid, '+1555' || lpad((1 + (x.g - 1) % {contacts})::text, 8, '0'),
                   1 + (x.g - 1) % {contacts}, '{{}}', s.status, 'wamid.' || x.g, '', 1,
                   CASE WHEN s.status = 'failed' AND x.g % 2 = 0 THEN NULL ELSE s.t END,
                   CASE WHEN s.status IN ('delivered', 'read') THEN s.t + interval '5 seconds' END,
                   CASE WHEN s.status = 'read' THEN s.t + interval '20 minutes' END,
                   CASE WHEN s.status = 'failed' THEN s.t + interval '2 seconds' END, s.t
            FROM (SELECT c.id AS cid, c.started_at, k, (c.id - 1) * {PER_CAMPAIGN} + k AS g
                  FROM campaigns c CROSS JOIN generate_series(1, {PER_CAMPAIGN}) k) x
            CROSS JOIN LATERAL (
                SELECT CASE WHEN {hx.format(salt="s")} % 100 < 2 THEN 'failed'
                            WHEN {hx.format(salt="s")} % 100 < 27 THEN 'sent'
                            WHEN {hx.format(salt="s")} % 100 < 57 THEN 'delivered' ELSE 'read' END AS status,
                       x.started_at + (x.k - 1) * interval '1 second' AS t
            ) s""")
        )
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        conn.execute(
            text(
                "ALTER TABLE campaign_recipients ADD CONSTRAINT uq_recipient_campaign_address UNIQUE (campaign_id, address)"
            )
        )
        for definition in dropped:
            conn.execute(text(definition))
        conn.execute(
            text("""
            INSERT INTO inbound_messages (channel_id, message_id, from_address, kind, text, context_message_id,
                                          payload, received_at, campaign_id)
            SELECT 1 + campaign_id % 2, 'wamid.in' || id, address, 'text', 'Thanks!', message_id, '',
                   sent_at + interval '1 hour', campaign_id
            FROM campaign_recipients WHERE id % 20 = 0 AND sent_at IS NOT NULL""")
        )
        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('campaign_recipients', 'id'), {n})"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def ensure_base(engine, contacts: int) -> float:
    with engine.connect() as conn:
        if _count(conn, "contacts") == contacts and _count(conn, "campaign_recipients") == CAMPAIGNS * PER_CAMPAIGN:
            return 0.0
    started = time.perf_counter()
    build(engine, contacts)
    return time.perf_counter() - started


def _actor(session: Session) -> User:
    actor = session.execute(select(User).where(User.email == "bench@example.com")).scalar_one_or_none()
    if actor is None:
        actor = User(email="bench@example.com", role="basic", password_hash="-")
        session.add(actor)
        session.commit()
    return actor


def queries(session: Session, actor: User, days: int) -> dict:
    since = dash.window_start(days, datetime.now(UTC))
    return {
        "sent / delivered / read per day": lambda: dash.sent_by_day(session, since),
        "the same, all live (no daily table)": lambda: dash.live_sent_by_day(session, since),
        "failed per day": lambda: dash.failed_by_day(session, since),
        "replies per day": lambda: dash.replies_by_day(session, since),
        "opt-outs": lambda: dash.opt_outs_since(session, since),
        "campaigns needing attention": lambda: [a["id"] for a in dash.attention(session, since)],
        "channels (tier, quality)": lambda: dash.channel_health(session),
        "whole dashboard()": lambda: _figures(dash.dashboard(session=session, actor=actor, days=days)),
    }


def _figures(d) -> tuple:
    return (d.sent, d.delivered, d.read, d.failed, d.replies, d.opt_outs, len(d.attention))


def timed(fn, runs: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


def measure(engine, runs: int, baseline_runs: int) -> list[dict]:
    rows = []
    with Session(engine, expire_on_commit=False) as session:
        actor = _actor(session)
        # The settled days' counts (daily_message_stats), from scratch: what a worker tick does once a day.
        session.execute(delete(DailyMessageStats))
        session.commit()
        started = time.perf_counter()
        counted = fill_settled_days(session, dash.live_sent_by_day)
        fill_s = time.perf_counter() - started
        print(f"  settled days counted into daily_message_stats: {counted} in {fill_s * 1000:.0f} ms (once, worker)")
        rows.append(
            {
                "days": 90,
                "query": f"settled days counted once ({counted} days, a worker tick)",
                "cpu_ms": None,
                "ms": fill_s * 1000,
                "before_ms": float("nan"),
                "scan_ms": float("nan"),
                "load": os.getloadavg()[0],
                "result": None,
            }
        )
        for days in dash.WINDOWS:
            for name, fn in queries(session, actor, days).items():
                fn()  # warm the cache once
                fast, result = timed(fn, runs)
                session.rollback()
                baselines = []
                for dropped in (INDEXES_0011, (*INDEXES_0011, INDEX_0009)):
                    for index in dropped:  # inside this transaction only: rolled back below
                        session.execute(text(f'DROP INDEX "{index}"'))
                    slow, reference = timed(fn, baseline_runs)
                    session.rollback()
                    assert reference == result, (name, days, reference, result)
                    baselines.append(slow)
                # CPU the PostgreSQL backend spends on it with parallel workers off: the machine's load does not
                # inflate it (other engineers' suites share these 2 cores), unlike wall time.
                cpu = serial_cpu_ms(session, fn, runs=3) if name != "whole dashboard()" else None
                row = {
                    "days": days,
                    "query": name,
                    "cpu_ms": cpu,
                    "ms": fast * 1000,
                    "before_ms": baselines[0] * 1000,
                    "scan_ms": baselines[1] * 1000,
                    "load": os.getloadavg()[0],
                    "result": result if name == "whole dashboard()" else None,
                }
                rows.append(row)
                print(
                    f"  {days:>2} days  {name:<34} {fast * 1000:8.1f} ms   before 0011 {baselines[0] * 1000:9.1f} ms   "
                    f"no index {baselines[1] * 1000:9.1f} ms   load {row['load']:.1f}   "
                    f"serial CPU {'—' if cpu is None else f'{cpu:.0f} ms'}",
                    flush=True,
                )
    return rows


# --- the other option: a daily rollup kept by a trigger (prototype, measured and rolled back) -----------------

_ROLLUP_DDL = """
CREATE TABLE bench_daily_rollup (day date, status varchar(16), n bigint NOT NULL, PRIMARY KEY (day, status));
CREATE FUNCTION bench_daily_rollup_fn() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_daily_rollup (day, status, n)
    SELECT day, status, sum(d) FROM (
        SELECT (sent_at AT TIME ZONE 'UTC')::date AS day, status, -1 AS d FROM old_rows WHERE sent_at IS NOT NULL
        UNION ALL
        SELECT (sent_at AT TIME ZONE 'UTC')::date, status, 1 FROM new_rows WHERE sent_at IS NOT NULL
    ) x GROUP BY day, status HAVING sum(d) <> 0 ORDER BY day, status
    ON CONFLICT (day, status) DO UPDATE SET n = bench_daily_rollup.n + excluded.n;
    RETURN NULL;
END $$;
"""
_ROLLUP_TRIGGER = (
    "CREATE TRIGGER bench_daily_rollup_trg AFTER UPDATE ON campaign_recipients REFERENCING OLD TABLE AS old_rows "
    "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bench_daily_rollup_fn()"
)
UPDATES = 5_000  # (fewer on a smaller base)


def measure_rollup(engine, runs: int) -> dict:
    """The rollup option, all inside transactions that are rolled back (the base is left as it was):
    - read: the 90-day per-day figures from a (day, status) rollup table instead of the index;
    - write: what the trigger that keeps it exact costs the webhook applier: UPDATEs of 5,000 recipients
      (sent -> delivered, one statement per row as its executemany sends them), with and without it."""
    since = dash.window_start(90, datetime.now(UTC))
    out: dict = {}
    with Session(engine) as session:
        session.execute(text(_ROLLUP_DDL))
        session.execute(
            text(
                "INSERT INTO bench_daily_rollup SELECT (sent_at AT TIME ZONE 'UTC')::date, status, count(*) "
                "FROM campaign_recipients WHERE sent_at IS NOT NULL GROUP BY 1, 2"
            )
        )
        read = text("SELECT day, status, n FROM bench_daily_rollup WHERE day >= :d")
        session.execute(read, {"d": since.date()}).all()
        out["read_ms"] = timed(lambda: session.execute(read, {"d": since.date()}).all(), runs)[0] * 1000
        ids = [
            r[0]
            for r in session.execute(
                text("SELECT id FROM campaign_recipients WHERE status = 'sent' ORDER BY id DESC LIMIT :n"),
                {"n": UPDATES * 2},  # the newest 'sent' rows: a recent campaign's, as the applier sees them
            )
        ]
        half = len(ids) // 2
        update = text("UPDATE campaign_recipients SET status = 'delivered', updated_at = now() WHERE id = :id")
        session.execute(text("SAVEPOINT before_updates"))
        started = time.perf_counter()
        session.execute(update, [{"id": i} for i in ids[:half]])
        out["plain_update_ms"] = (time.perf_counter() - started) * 1000
        session.execute(text("ROLLBACK TO SAVEPOINT before_updates"))
        session.execute(text(_ROLLUP_TRIGGER))
        started = time.perf_counter()
        session.execute(update, [{"id": i} for i in ids[half : 2 * half]])
        out["trigger_update_ms"] = (time.perf_counter() - started) * 1000
        session.rollback()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM campaign_recipients"))  # the rolled-back updates' dead rows: next runs read as before
    out["updates"] = half
    print(
        f"  rollup: 90-day read {out['read_ms']:.1f} ms; {half:,} recipient updates "
        f"{out['plain_update_ms']:.0f} ms without the trigger, {out['trigger_update_ms']:.0f} ms with it",
        flush=True,
    )
    return out


def report(rows: list[dict], runs: int, baseline_runs: int, version: str, counts: dict, rollup: dict) -> str:
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine()}; PostgreSQL {version}. Base: {counts['contacts']:,} contacts, "
        f"{counts['recipients']:,} recipient rows over 365 days ({CAMPAIGNS} campaigns), "
        f"{counts['inbound']:,} replies. Median of {runs} runs with migration 0011's indexes; baselines "
        f"(median of {baseline_runs}) in the same run on the same data: *before 0011* = its indexes dropped "
        "(0009's index on sent_at alone still there), *no index* = that one dropped too. All variants returned "
        "identical figures. Target: every query ≤ 300 ms. Load = 1-min load average after the row (2 cores). "
        "Serial CPU = CPU time of the PostgreSQL backend for the query with 0011's indexes and parallel workers "
        "off (mean of 3; the load does not inflate it).",
        "",
        "| window | query | with 0011 (ms) | serial CPU (ms) | before 0011 (ms) | no time index (ms) | speed-up vs before"
        " | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = "—" if r["cpu_ms"] is None else f"{r['cpu_ms']:.0f}"
        lines.append(
            f"| {r['days']} days | {r['query']} | {r['ms']:.1f} | {cpu} | {r['before_ms']:.1f} | {r['scan_ms']:.1f} | "
            f"{r['before_ms'] / r['ms']:.1f}x | {r['load']:.1f} |"
        )
    per_update = (rollup["trigger_update_ms"] - rollup["plain_update_ms"]) / rollup["updates"] * 1000
    lines.append(
        f"\nThe other option, a daily (day, status) rollup kept exact by a statement-level trigger on "
        f"campaign_recipients (prototype, rolled back): the 90-day per-day read takes {rollup['read_ms']:.1f} ms, "
        f"but {rollup['updates']:,} recipient updates as the webhook applier sends them took "
        f"{rollup['trigger_update_ms']:.0f} ms with the trigger against {rollup['plain_update_ms']:.0f} ms without "
        f"({per_update:+.0f} µs per update, on the path that sends and applies statuses), and every writer's "
        "transaction would then update the same few rows (today's), serialising concurrent workers."
    )
    for r in rows:
        if r["result"]:
            sent, delivered, read, failed, replies, opt_outs, attention = r["result"]
            lines.append(
                f"\n{r['days']} days: {sent:,} sent, {delivered:,} delivered, {read:,} read, {failed:,} failed, "
                f"{replies:,} replies, {opt_outs:,} opt-outs, {attention} campaigns needing attention."
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    global PER_CAMPAIGN
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=2)
    parser.add_argument("--pg-db", default=BENCH_DB)
    parser.add_argument("--per-campaign", type=int, default=PER_CAMPAIGN, help="recipients per campaign (x500)")
    args = parser.parse_args()
    PER_CAMPAIGN = args.per_campaign

    base = os.environ.get("BENCH_PG_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    url = pg_bench_url(base, args.pg_db)
    upgrade_to_head(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
    built = ensure_base(engine, args.contacts)
    with engine.connect() as conn:
        counts = {
            "contacts": _count(conn, "contacts"),
            "recipients": _count(conn, "campaign_recipients"),
            "inbound": _count(conn, "inbound_messages"),
        }
    print(
        f"PostgreSQL base: {counts['contacts']:,} contacts, {counts['recipients']:,} recipients"
        + (f" (built in {built:.0f} s)" if built else " (reused)")
    )
    rows = measure(engine, args.runs, args.baseline_runs)
    rollup = measure_rollup(engine, args.runs)
    engine.dispose()
    table = report(rows, args.runs, args.baseline_runs, version, counts, rollup)
    print()
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with open(RESULTS, "a", encoding="utf-8") as out:
        if new:
            out.write("# Home dashboard benchmark (bench/dashboard.py)\n\n")
        out.write(table + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

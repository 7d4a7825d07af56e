"""Freezing a campaign's audience: one recipient row per number, values resolved.

The recipients come from `app.services.audiences.recipients` (the reader the design preview and the trial
send use too), each with its template values resolved.

**The freeze streams** (issue 16): the first message must leave within a second of "Send" whatever the
audience size, so the rows are written chunk by chunk, each chunk in its own transaction together with
the campaign's cursor (`Campaign.freeze_cursor`: the last contact identity id frozen for a list/segment,
the last file line read for a CSV file). A committed chunk is claimable at once (`claims.claim_rows` only
ever sees rows that exist); `progress.finish_if_done` does not finish a campaign while `freezing` is set.
- `freeze_first_chunk` runs in the transaction that moves the campaign to Sending (`lifecycle.start_now`):
  a small audience is frozen whole there (no change for it: counts are known when "Send" returns), and
  "no one to send to" is still refused at once;
- `continue_freeze` freezes the rest, chunk after chunk, in a send job (`job.send_campaign_batch` runs it
  in a thread beside its sending) holding the freeze's lease (`take_freeze_lease`, renewed by every chunk).
Crash safety: a chunk's rows and the cursor after them commit together, and each chunk's cursor update is
conditional on the cursor it started from, so a process killed mid-freeze loses at most its uncommitted
chunk; when its lease expires the next send job resumes after the cursor (the recipients' order is
stable: identity ids, file lines), and the unique (campaign, address) constraint with ON CONFLICT DO
NOTHING drops any row written twice. Two freezers racing (a lease taken over too early) cannot both
advance the same cursor: the loser's chunk is rolled back and it stops.

`freeze_audience` is the former up-front freeze (all rows in the caller's transaction); it stays for the
benchmark's baseline (bench/freeze.py) and for tests comparing the writers.

Two fast paths keep the freeze short (bench/freeze.py times them):
- the "simple plan": when every variable comes from a built-in contact field or a fixed text, only
  those columns are read and a row is resolved without `variables.resolve`'s generic lookups;
- on PostgreSQL (psycopg) the rows are written with COPY (`recipient_copy.RecipientCopier`) instead of
  the portable INSERT ... ON CONFLICT DO NOTHING of `_InsertWriter`. Both store the same rows
  (tests/integration/test_freeze_copy.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.domain.campaign_status import R_QUEUED, R_SKIPPED
from app.domain.template_components import clean_parameter_text
from app.domain.variables import CONTACT_FIELDS, missing_title, resolve
from app.models import Campaign, CampaignRecipient, Template
from app.services.audiences.csv_scan import CsvRefused
from app.services.audiences.recipients import (
    CONTACT_COLUMNS,
    contact_rows,
    csv_upload,
    iter_recipients,
    keyed_csv_rows,
)
from app.services.audiences.summary import AudienceError
from app.services.sending.frequency_cap import skip_capped
from app.services.sending.readiness import template_keys
from app.services.sending.recipient_copy import RecipientCopier
from app.timeutil import utcnow

log = logging.getLogger(__name__)
R = CampaignRecipient.__table__
_INSERT_CHUNK = 5000

FrozenRow = tuple[str, "int | None", dict, str, str]  # address, contact id, values, status, error title


def _simple_plan(keys: list[str], mapping: Any) -> list[tuple[str, str, str]] | None:
    """When every variable comes from a built-in contact field or a fixed text (the common case),
    [(key, contact field or "" for text, cleaned text or fallback)] so that the freeze can read only
    those columns and resolve a row without `variables.resolve`'s generic lookups (same results:
    tests/integration/test_freeze_fast_path.py); None otherwise (custom fields, CSV columns, odd specs)."""
    if not isinstance(mapping, dict):
        return None
    plan = []
    for key in keys:
        spec = mapping.get(key)
        if not isinstance(spec, dict):
            return None
        source = str(spec.get("source") or "").lower()
        if source == "text":
            plan.append(
                (
                    key,
                    "",
                    clean_parameter_text(spec.get("value", spec.get("text", str(spec.get("key") or ""))))
                    or clean_parameter_text(spec.get("fallback")),
                )
            )
        elif source == "field" and str(spec.get("key") or "") in CONTACT_FIELDS:
            plan.append((key, str(spec.get("key")), clean_parameter_text(spec.get("fallback"))))
        else:
            return None
    return plan


def _clean(value: Any) -> str:
    """clean_parameter_text, skipping its two regex passes when they cannot change anything."""
    if (
        value.__class__ is str
        and "\n" not in value
        and "\r" not in value
        and "\t" not in value
        and "     " not in value
    ):
        return value.strip()
    return clean_parameter_text(value)


def _plan_fields(plan: list[tuple[str, str, str]]) -> list[str]:
    return sorted({f for _k, f, _t in plan if f and f != "phone"})


def _simple_resolver(plan: list[tuple[str, str, str]]) -> Callable[[Any], FrozenRow]:
    """A row (address, contact id, *the plan's fields, ...) -> its FrozenRow, per the plan."""
    position = {f: i + 2 for i, f in enumerate(_plan_fields(plan))}  # after (address, contact id)
    steps = [(key, position.get(field, 0) if field else -1, text) for key, field, text in plan]

    def frozen(row: Any) -> FrozenRow:
        values: dict[str, str] = {}
        missing: list[str] = []
        for key, pos, text in steps:
            # pos -1: fixed text; 0: the phone (the address); else the contact column
            value = text if pos < 0 else (_clean(row[pos] if pos else row[0]) or text)
            if value:
                values[key] = value
            else:
                missing.append(key)
        return (row[0], row[1], values, R_SKIPPED if missing else R_QUEUED, missing_title(missing) if missing else "")

    return frozen


def _simple_rows(session: Session, campaign: Campaign, plan: list[tuple[str, str, str]]) -> Iterator[FrozenRow]:
    """Recipient rows of a list/segment audience, reading only the contact columns the plan uses."""
    frozen = _simple_resolver(plan)
    for row in contact_rows(session, campaign, _plan_fields(plan)):
        yield frozen(row)


def _resolved(
    keys: list[str], mapping: Any, address: str, contact_id: int | None, contact: dict | None, row: dict | None
) -> FrozenRow:
    resolution = resolve(keys, mapping, contact=contact, row=row)
    return (address, contact_id, resolution.values, R_QUEUED if resolution.ok else R_SKIPPED, resolution.error_title)


def _resolved_rows(session: Session, campaign: Campaign, keys: list[str], mapping: Any) -> Iterator[FrozenRow]:
    """Recipient rows of any audience, each resolved by `variables.resolve`."""
    for address, contact_id, contact, row in iter_recipients(session, campaign):
        yield _resolved(keys, mapping, address, contact_id, contact, row)


def _insert_statement(session: Session):
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(R).on_conflict_do_nothing(index_elements=["campaign_id", "address"])


class _InsertWriter:
    """The portable writer: executemany of INSERT ... ON CONFLICT DO NOTHING, chunk by chunk."""

    def __init__(self, session: Session, campaign_id: int, now: datetime) -> None:
        self._stmt = _insert_statement(session)
        self._conn = session.connection()
        self._campaign_id, self._now = campaign_id, now

    def write(self, rows: list[FrozenRow]) -> None:
        self._conn.execute(
            self._stmt,
            [
                {
                    "campaign_id": self._campaign_id,
                    "address": address,
                    "contact_id": contact_id,
                    "variables": values,
                    "status": status,
                    "error_code": None,
                    "error_title": title,
                    "attempts": 0,
                    "updated_at": self._now,
                }
                for address, contact_id, values, status, title in rows
            ],
        )

    def finish(self) -> None:
        pass


def _use_copy(session: Session, use_copy: bool | None) -> bool:
    if use_copy is None:  # COPY through psycopg 3's API; any other driver keeps the portable INSERT
        dialect = session.get_bind().dialect
        return dialect.name == "postgresql" and dialect.driver == "psycopg"
    return use_copy


def _writer(session: Session, campaign_id: int, now: datetime, use_copy: bool) -> Any:
    return RecipientCopier(session, campaign_id, now) if use_copy else _InsertWriter(session, campaign_id, now)


def _write(session: Session, campaign_id: int, rows: list[FrozenRow], now: datetime, use_copy: bool) -> None:
    """Write one chunk in the session's transaction (INSERT ... ON CONFLICT DO NOTHING, or its COPY form)."""
    if rows:
        writer = _writer(session, campaign_id, now, use_copy)
        writer.write(rows)
        writer.finish()
        # before the chunk commits, so no claim ever sees a recipient the frequency cap protects
        skip_capped(session, campaign_id, [r[0] for r in rows if r[3] == R_QUEUED], now)


def freeze_audience(session: Session, campaign: Campaign, now: datetime, *, use_copy: bool | None = None) -> int:
    """The up-front freeze: insert ALL the campaign's recipient rows (one per number) in the caller's
    transaction; returns how many the audience has. PostgreSQL (psycopg) writes them with COPY unless
    `use_copy` is False. Raises AudienceError when the audience is gone. (Sending now streams the freeze
    instead: `freeze_first_chunk` + `continue_freeze`; this stays as the benchmark's baseline.)"""
    template = session.get(Template, campaign.template_id)
    keys = template_keys(template)
    mapping = campaign.variable_mapping or {}
    use_copy = _use_copy(session, use_copy)
    writer: Any = _writer(session, campaign.id, now, use_copy)
    plan = _simple_plan(keys, mapping) if campaign.audience_kind in ("list", "segment") else None
    rows = (
        _simple_rows(session, campaign, plan) if plan is not None else _resolved_rows(session, campaign, keys, mapping)
    )
    total = 0
    chunk: list[FrozenRow] = []
    for row in rows:  # the reader yields each number once
        chunk.append(row)
        if len(chunk) >= _INSERT_CHUNK:
            writer.write(chunk)
            total += len(chunk)
            chunk = []
    if chunk:
        writer.write(chunk)
        total += len(chunk)
    writer.finish()
    return total


# --- the streaming freeze ----------------------------------------------------------------------------


class _ChunkReader:
    """Reads the audience chunk by chunk after a cursor, in the recipients' order: `next_chunk(n)` ->
    (rows, cursor after them, whether the audience is exhausted). A CSV file is read in one pass from its
    start (resuming skips the lines up to the cursor). A list/segment is read either as one page
    (`identity id > cursor ... LIMIT n`, in the session's transaction: the first chunk) or, `streaming`,
    as ONE query from the cursor to the end on a connection of its own, fetched a chunk at a time while
    the chunks commit on the session's: paging with a query per chunk cost a pass over the whole audience
    per page on SQLite (its planner walks the list, then sorts), ~0.2 s per page at 100,000."""

    def __init__(self, session: Session, campaign: Campaign, after: int, *, streaming: bool = False) -> None:
        self.session, self.campaign, self.cursor = session, campaign, after
        self.streaming = streaming
        self._read: Session | None = None
        self._rows: Iterator[Any] | None = None
        template = session.get(Template, campaign.template_id)
        self.keys = template_keys(template) if template is not None else []
        self.mapping = campaign.variable_mapping or {}
        self.kind = campaign.audience_kind
        if self.kind not in ("list", "segment", "csv"):
            raise AudienceError("Choose the audience: a contact list, a segment or a file.")
        plan = _simple_plan(self.keys, self.mapping) if self.kind != "csv" else None
        if plan is not None:
            self.fields: tuple[str, ...] = tuple(_plan_fields(plan))
            self.frozen = _simple_resolver(plan)
        else:
            self.fields = CONTACT_COLUMNS
            self.frozen = self._generic
        self._csv: Iterator[tuple[int, str, dict[str, str]]] | None = None

    def _generic(self, row: Any) -> FrozenRow:
        contact = dict(zip(self.fields, row[2 : 2 + len(self.fields)], strict=True))
        contact["phone"] = row[0]
        return _resolved(self.keys, self.mapping, row[0], row[1], contact, None)

    def next_chunk(self, size: int) -> tuple[list[FrozenRow], int, bool]:
        if self.kind == "csv":
            if self._csv is None:
                self._csv = keyed_csv_rows(
                    self.session, csv_upload(self.session, self.campaign), after_line=self.cursor
                )
            page = list(islice(self._csv, size))
            rows = [_resolved(self.keys, self.mapping, e164, None, None, row) for _line, e164, row in page]
        elif self.streaming:
            if self._rows is None:
                self._read = Session(self.session.get_bind())
                self._rows = contact_rows(
                    self._read, self.campaign, self.fields, after=self.cursor, keyed=True, stream=True
                )
            page = list(islice(self._rows, size))
            rows = [self.frozen(row) for row in page]
        else:
            page = list(
                contact_rows(self.session, self.campaign, self.fields, after=self.cursor, limit=size, keyed=True)
            )
            rows = [self.frozen(row) for row in page]
        if page:
            self.cursor = page[-1][0] if self.kind == "csv" else page[-1][-1]
        return rows, self.cursor, len(page) < size

    def close(self) -> None:
        if self._read is not None:
            self._read.close()
            self._read = self._rows = None


def freeze_first_chunk(
    session: Session, campaign: Campaign, now: datetime, size: int, *, use_copy: bool | None = None
) -> tuple[int, bool]:
    """Freeze the audience's first `size` recipients in the caller's transaction (the one that moves the
    campaign to Sending) and record the cursor; (rows written, whether the freeze is complete). When it is
    not, the campaign is left `freezing` with a free lease: the first send job continues it."""
    reader = _ChunkReader(session, campaign, 0)
    rows, cursor, done = reader.next_chunk(max(1, size))
    _write(session, campaign.id, rows, now, _use_copy(session, use_copy))
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(freezing=not done, freeze_cursor=cursor, freeze_heartbeat_at=None)
        .execution_options(synchronize_session=False)
    )
    return len(rows), done


def take_freeze_lease(engine: Engine, campaign_id: int, lease_s: float, now: datetime | None = None) -> bool:
    """Whether this caller now holds the campaign's freeze: it is `freezing` and nobody froze a chunk
    of it within `lease_s` (the last freezer ended, released it, or died). One caller wins."""
    now = now or utcnow()
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        stale = now - timedelta(seconds=lease_s)
        won = conn.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.freezing.is_(True),
                or_(Campaign.freeze_heartbeat_at.is_(None), Campaign.freeze_heartbeat_at < stale),
            )
            .values(freeze_heartbeat_at=now)
        ).rowcount
        conn.commit()
    return won == 1


def is_freezing(engine: Engine, campaign_id: int) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(Campaign.freezing).where(Campaign.id == campaign_id)).scalar())


@dataclass
class FreezeRun:
    rows: int = 0  # rows read and written by this run (duplicates of an earlier run included)
    chunks: int = 0
    done: bool = False  # the freeze is complete (this run wrote its last chunk)
    lost_lease: bool = False  # another freezer advanced the cursor, or the campaign was cancelled
    seconds: float = 0.0


def continue_freeze(
    engine: Engine,
    campaign_id: int,
    *,
    chunk: int = _INSERT_CHUNK,
    deadline: float | None = None,
    stop: threading.Event | None = None,
    use_copy: bool | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FreezeRun:
    """Freeze the rest of a `freezing` campaign's audience after its cursor, one committed chunk at a
    time, until it is complete, `stop` is set or `deadline` (time.monotonic()) passes; the caller holds
    the lease (`take_freeze_lease`). Each chunk's transaction writes its rows and moves the cursor only if
    it is still where this run left it (else the chunk is rolled back and the run ends). Stopping early
    releases the lease, so the next send job takes over at once. `on_chunk(rows)` after each commit."""
    run = FreezeRun()
    started = time.monotonic()
    with Session(engine, expire_on_commit=False) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or not campaign.freezing:
            return run
        use_copy = _use_copy(session, use_copy)
        cursor = campaign.freeze_cursor
        reader = _ChunkReader(session, campaign, cursor, streaming=True)
        session.commit()
        try:
            _freeze_chunks(session, reader, run, campaign_id, cursor, chunk, deadline, stop, use_copy, on_chunk)
        finally:
            reader.close()
    run.seconds = time.monotonic() - started
    return run


def _freeze_chunks(
    session: Session,
    reader: _ChunkReader,
    run: FreezeRun,
    campaign_id: int,
    cursor: int,
    chunk: int,
    deadline: float | None,
    stop: threading.Event | None,
    use_copy: bool,
    on_chunk: Callable[[int], None] | None,
) -> None:
    """`continue_freeze`'s loop: read a chunk, then write it and move the cursor in one transaction."""
    sqlite_db = session.get_bind().dialect.name == "sqlite"
    while True:
        if (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() >= deadline):
            session.execute(
                update(Campaign)
                .where(
                    Campaign.id == campaign_id,
                    Campaign.freezing.is_(True),
                    Campaign.freeze_cursor == cursor,
                )
                .values(freeze_heartbeat_at=None)
            )
            session.commit()
            break
        try:
            rows, new_cursor, done = reader.next_chunk(chunk)
        except (AudienceError, CsvRefused) as exc:
            # the segment or file went away (or the file changed) mid-freeze: what was frozen is the audience
            log.warning(
                "campaign %s: the audience cannot be read any more (%s); the freeze ends here", campaign_id, exc
            )
            rows, new_cursor, done = [], cursor, True
        session.commit()  # the read's snapshot ends before the write lock is taken (SQLite)
        now = utcnow()
        if sqlite_db:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        _write(session, campaign_id, rows, now, use_copy)
        won = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.freezing.is_(True),
                Campaign.freeze_cursor == cursor,
            )
            .values(
                freeze_cursor=new_cursor, freezing=not done, freeze_heartbeat_at=None if done else now, updated_at=now
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if won != 1:
            session.rollback()
            run.lost_lease = True
            break
        session.commit()
        cursor = new_cursor
        run.rows += len(rows)
        run.chunks += 1
        if on_chunk is not None:
            on_chunk(len(rows))
        if done:
            run.done = True
            refresh_planner_statistics(session)
            break


def refresh_planner_statistics(session: Session) -> None:
    """PostgreSQL: ANALYZE the recipients table once an audience is frozen. Its statistics otherwise describe
    the table before this campaign's rows (autovacuum gets to it within minutes): the status webhooks then
    matched by campaign instead of by wamid index, 4 s per batch of 500 instead of 20 ms (bench/webhooks.py)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql_text("ANALYZE campaign_recipients"))
        session.commit()


def freeze_whole(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    first: int,
    chunk: int = _INSERT_CHUNK,
    use_copy: bool | None = None,
) -> int:
    """First chunk in the caller's transaction (committed here), then the rest: a whole streaming freeze in
    one call (benchmarks, tests). Returns the number of recipient rows the campaign has."""
    _count, done = freeze_first_chunk(session, campaign, now, first, use_copy=use_copy)
    session.commit()
    if not done:
        continue_freeze(session.get_bind(), campaign.id, chunk=chunk, use_copy=use_copy)
    return session.execute(select(func.count()).select_from(R).where(R.c.campaign_id == campaign.id)).scalar()

"""Who an audience is, and the summary the campaign wizard shows beside step 1 (SPEC S14, S15).

`audience_contact_ids` is the one definition of a list's or a segment's members: the summary counts
it and the sending engine freezes it. Segments are evaluated at call time, so contacts added after the
segment was saved are members when they match.

`audience_summary` answers with ONE aggregate query over the contacts alone: each contact carries its
channel flags (`contacts.channel_flags`, kept by triggers on contact_identities, migration 0005), so the
audience is counted per distinct flags value (at most 256 groups) and the figures are derived from those
few rows. No join to identities and no per-contact grouping: a 1,000,000-contact segment or list is one
parallel scan on PostgreSQL (bench/audience.py; issue 16).

`_summary_query` is the definition the flags replace (contacts outer-joined to their identities, reduced to
per-contact flags, then summed). It stays as the reference the differential test
(tests/integration/test_audience_flags.py) and the benchmark's same-run baseline compare against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import and_, case, func, select, text, true, union_all
from sqlalchemy.sql import Select
from sqlmodel import Session

from app.domain import permissions as perm
from app.domain.variables import CONTACT_TEXT_FIELDS
from app.models import Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, User
from app.services.access import get_or_raise, require
from app.services.audiences.channel_flags import CHANNEL_BITS, SUBSCRIBED_MASK, UNSUBSCRIBED_SHIFT
from app.services.audiences.segment_sql import rules_condition

CHANNEL_TYPES: tuple[str, ...] = ("whatsapp", "instagram", "messenger", "sms")
SENDABLE_CHANNEL_TYPES: tuple[str, ...] = ("whatsapp",)  # this flow sends WhatsApp templates only
WHATSAPP_CHANNEL_KINDS = ("whatsapp_cloud", "sandbox")
AUDIENCE_KINDS = ("list", "segment", "csv")
CONTACT_VARIABLE_FIELDS: tuple[str, ...] = CONTACT_TEXT_FIELDS  # the one list: app.domain.variables
_CUSTOM_KEYS_SAMPLE = 1000
POSTGRES_PARTS = 2  # id ranges summed in parallel on PostgreSQL (one per core of the 2-core target server)
PARALLEL_MIN_CONTACTS = 50_000  # below this, one part is faster than starting workers


class AudienceError(ValueError):
    """The audience cannot be summarised (gone, unknown kind); the message is shown as is."""


@dataclass
class AudienceSummary:
    kind: str
    ref_id: int | None
    name: str = ""
    total: int = 0  # contacts in the list/segment, or data rows in the CSV
    subscribed_by_channel: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNEL_TYPES, 0))
    reach: int = 0  # subscribed on WhatsApp (CSV: unique valid numbers)
    not_reachable: int = 0  # no subscribed WhatsApp identity, but subscribed on another channel type
    unsubscribed: int = 0  # have a WhatsApp identity, none of them subscribed
    no_channel: int = 0  # not subscribed anywhere (or no identity at all)
    invalid: int = 0  # CSV only: rows whose identifier is missing or malformed
    duplicates: int = 0  # CSV only: valid rows repeating an earlier number
    variable_fields: list[str] = field(default_factory=list)
    suggested_channel_types: list[str] = field(default_factory=list)
    channel_id: int | None = None
    channel_can_send: bool = True  # the chosen channel is a WhatsApp one (Cloud API or Sandbox)

    def as_dict(self) -> dict:
        return asdict(self)


def list_contact_ids(list_id: int) -> Select:
    return select(ListMembership.contact_id.label("id")).where(ListMembership.list_id == list_id)


def segment_contact_ids(rules: list, match: str = "all") -> Select:
    return select(Contact.id.label("id")).where(rules_condition(rules, match))


def _load_segment(session: Session | None, segment_id: int) -> Segment:
    if session is not None:
        segment = session.get(Segment, segment_id)
    else:
        from app.db import get_engine  # a caller without a session (e.g. building a query up front)

        with Session(get_engine()) as own:
            segment = own.get(Segment, segment_id)
    if segment is None:
        raise AudienceError("That segment no longer exists.")
    return segment


def _ref_id(ref_id) -> int:
    try:
        return int(ref_id)
    except (TypeError, ValueError):
        raise AudienceError("Choose a list or a segment.") from None


def audience_contact_ids(kind: str, ref_id: int, *, session: Session | None = None) -> Select:
    """A SELECT of contact ids (one column, `id`) for a list's members or a segment's matches."""
    ref_id = _ref_id(ref_id)
    if kind == "list":
        return list_contact_ids(ref_id)
    if kind == "segment":
        segment = _load_segment(session, ref_id)
        return segment_contact_ids(segment.rules, segment.match)
    raise AudienceError(f"Unknown audience kind {kind!r} (list or segment).")


def _flag(cond) -> object:
    return func.max(case((cond, 1), else_=0))


def _per_contact_totals(audience, bounds: tuple[int, int] | None) -> Select:
    """Contacts of `audience` (optionally within an id range) reduced to per-channel flags, then summed."""
    subscribed = ContactIdentity.subscribed.is_(True)
    on = ContactIdentity.contact_id == audience.c.id
    query = select(
        audience.c.id,
        *(_flag(and_(ContactIdentity.channel_type == t, subscribed)).label(t) for t in CHANNEL_TYPES),
        _flag(ContactIdentity.channel_type == "whatsapp").label("has_whatsapp"),
    )
    if bounds is not None:
        # Bounding both sides lets each part's merge join start at its own range of the identity index.
        on = and_(on, ContactIdentity.contact_id.between(*bounds))
        query = query.where(audience.c.id.between(*bounds))
    per_contact = (
        query.select_from(audience.outerjoin(ContactIdentity, on)).group_by(audience.c.id).subquery("per_contact")
    )
    c = per_contact.c
    others = c.instagram + c.messenger + c.sms
    total_sum = lambda expr: func.coalesce(func.sum(expr), 0)
    return select(
        func.count().label("total"),
        *(total_sum(getattr(c, t)).label(t) for t in CHANNEL_TYPES),
        total_sum(case((and_(c.whatsapp == 0, others > 0), 1), else_=0)).label("not_reachable"),
        total_sum(case((and_(c.has_whatsapp == 1, c.whatsapp == 0), 1), else_=0)).label("unsubscribed"),
        total_sum(case((c.whatsapp + others == 0, 1), else_=0)).label("no_channel"),
    ).select_from(per_contact)


SUMMARY_COLUMNS = ("total", *CHANNEL_TYPES, "not_reachable", "unsubscribed", "no_channel")


def _summary_query(ids: Select, parts: list[tuple[int, int]] | None = None) -> Select:
    """One aggregate statement. With `parts` (contact id ranges) it is a UNION ALL of the same aggregate
    per range, summed: PostgreSQL runs the branches in parallel workers (Parallel Append), which is
    what brings a 1,000,000-contact summary down on a 2-core server; the result is identical."""
    audience = ids.subquery("audience")
    if not parts or len(parts) < 2:
        return _per_contact_totals(audience, None)
    branches = union_all(*(_per_contact_totals(audience, bounds) for bounds in parts)).subquery("parts")
    return select(*(func.coalesce(func.sum(branches.c[name]), 0).label(name) for name in SUMMARY_COLUMNS))


def _estimated_rows(session: Session, ids: Select) -> float:
    """The planner's estimate of the audience size (planning only, about a millisecond)."""
    compiled = ids.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    return float(plan[0]["Plan"]["Plan Rows"])


def _id_ranges(session: Session, ids: Select, parts: int) -> list[tuple[int, int]] | None:
    """Contact id ranges for a parallel summary, or None when one part is better: small audiences, and
    selective segments whose per-range plans the planner gets wrong (JSON rules have no statistics)."""
    if parts < 2 or _estimated_rows(session, ids) < PARALLEL_MIN_CONTACTS:
        return None
    low, high = session.execute(select(func.min(Contact.id), func.max(Contact.id))).one()
    if low is None:
        return None
    step = (high - low + parts) // parts
    return [(low + i * step, min(high, low + (i + 1) * step - 1)) for i in range(parts)]


def reference_summary_row(session: Session, ids: Select):
    """The summary row as computed before the flags column (identities joined and grouped per contact),
    with its PostgreSQL id-range parallelism: the reference for the differential test and the baseline."""
    if session.get_bind().dialect.name != "postgresql":
        return session.execute(_summary_query(ids)).one()
    # For this one analytic statement (transaction-scoped): JIT compilation costs more than it saves,
    # and parallel workers must be allowed to start for the id-range parts.
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text("SET LOCAL parallel_setup_cost = 0"))
    return session.execute(_summary_query(ids, _id_ranges(session, ids, POSTGRES_PARTS))).one()


def _contacts_condition(ids: Select):
    """The WHERE clause of `ids` when it is a plain `SELECT contacts.id FROM contacts WHERE ...` (a segment),
    so callers can read other contact columns with it instead of joining contacts to itself; else None."""
    if len(ids.selected_columns) != 1 or ids.get_final_froms() != [Contact.__table__]:
        return None
    if (
        ids._group_by_clauses
        or ids._having_criteria
        or ids._distinct
        or ids._limit_clause is not None
        or ids._offset_clause is not None
    ):
        return None
    column = ids.selected_columns[0]
    column = getattr(column, "element", column)  # through a label
    if getattr(column, "table", None) is not Contact.__table__ or column.key != "id":
        return None
    return ids.whereclause if ids.whereclause is not None else true()


def _contacts_of(ids: Select, *columns) -> Select:
    """SELECT `columns` FROM contacts for the contacts of the audience `ids` (each contact once)."""
    condition = _contacts_condition(ids)
    query = select(*columns)
    if condition is not None:
        return query.where(condition)
    # A semi-join: each contact once, whatever `ids` repeats (as the reference's GROUP BY id did).
    return query.where(Contact.id.in_(ids.scalar_subquery()))


def flags_histogram(session: Session, ids: Select) -> dict[int, int]:
    """{channel_flags value: number of audience contacts with it}: one grouped scan, at most 256 rows.

    A segment is its rules' condition over contacts (one parallel scan). A list is its members merge-joined
    with contacts, both read in contact id order from index-only scans (list_memberships_pkey,
    ix_contacts_id_flags); PostgreSQL would rather hash 500,000 members, which measured 1.5-1.7x slower."""
    query = _contacts_of(ids, Contact.channel_flags, func.count()).group_by(Contact.channel_flags)
    if session.get_bind().dialect.name != "postgresql":
        # SQLite groups by walking ix_contacts_channel_flags (no temporary B-tree to sort into). Hiding that
        # index (`channel_flags + 0`) made a selective segment ~25% faster but the whole-base one 3-10x slower.
        return {int(flags): int(n) for flags, n in session.execute(query).all()}
    # For this one statement, then put back: JIT compiling costs more than the scan it would speed up.
    settings = {"jit": "off"} if _contacts_condition(ids) is not None else {"jit": "off", "enable_hashjoin": "off"}
    saved = session.execute(text("SELECT " + ", ".join(f"current_setting('{name}')" for name in settings))).one()
    _set_local(session, settings)
    rows = session.execute(query).all()
    _set_local(session, dict(zip(settings, saved, strict=True)))
    return {int(flags): int(n) for flags, n in rows}


def _set_local(session: Session, settings: dict[str, str]) -> None:
    """Transaction-scoped settings (SET LOCAL), in one round trip."""
    names = list(settings)
    params = {**{f"n{i}": n for i, n in enumerate(names)}, **{f"v{i}": settings[n] for i, n in enumerate(names)}}
    session.execute(text("SELECT " + ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(names)))), params)


def counts_from_flags(histogram: dict[int, int]) -> dict[str, int]:
    """The summary's figures (SUMMARY_COLUMNS) from a flags histogram; same meanings as `_summary_query`."""
    wa_sub, wa_unsub = CHANNEL_BITS["whatsapp"], CHANNEL_BITS["whatsapp"] << UNSUBSCRIBED_SHIFT
    others = SUBSCRIBED_MASK & ~wa_sub

    def count(test) -> int:
        return sum(n for flags, n in histogram.items() if test(flags))

    counts = {"total": sum(histogram.values())}
    counts.update({t: count(lambda f, bit=CHANNEL_BITS[t]: f & bit) for t in CHANNEL_TYPES})
    counts["not_reachable"] = count(lambda f: not f & wa_sub and f & others)
    counts["unsubscribed"] = count(lambda f: f & wa_unsub and not f & wa_sub)
    counts["no_channel"] = count(lambda f: not f & SUBSCRIBED_MASK)
    return counts


def _custom_keys(session: Session, ids: Select) -> list[str]:
    """Custom field names present in a sample of the audience (a bounded read, not a loop over all)."""
    # A join (not IN) lets the database stop after the sample instead of building the whole audience first.
    condition = _contacts_condition(ids)
    if condition is not None:
        sample = select(Contact.custom_fields).where(condition).limit(_CUSTOM_KEYS_SAMPLE)
    else:
        audience = ids.subquery("audience")
        sample = select(Contact.custom_fields).join(audience, audience.c.id == Contact.id).limit(_CUSTOM_KEYS_SAMPLE)
    keys: set[str] = set()
    for fields in session.execute(sample).scalars():
        if isinstance(fields, dict):
            keys.update(str(k) for k in fields)
    return sorted(keys)


def _channel(session: Session, channel_id) -> Channel | None:
    if channel_id in (None, ""):
        return None
    return get_or_raise(session, Channel, channel_id, AudienceError, "That channel no longer exists.")


def _suggested(counts: dict[str, int]) -> list[str]:
    return [t for t in sorted(CHANNEL_TYPES, key=lambda t: (-counts[t], CHANNEL_TYPES.index(t))) if counts[t] > 0]


def summarise_ids(
    *,
    session: Session,
    ids: Select,
    kind: str = "segment",
    ref_id: int | None = None,
    name: str = "",
    channel: Channel | None = None,
) -> AudienceSummary:
    """The summary of any SELECT of contact ids (used for saved audiences and unsaved rules alike)."""
    row = counts_from_flags(flags_histogram(session, ids))
    counts = {t: row[t] for t in CHANNEL_TYPES}
    can_send = channel is None or channel.kind in WHATSAPP_CHANNEL_KINDS
    return AudienceSummary(
        kind=kind,
        ref_id=ref_id,
        name=name,
        total=row["total"],
        subscribed_by_channel=counts,
        reach=counts["whatsapp"] if can_send else 0,
        not_reachable=row["not_reachable"],
        unsubscribed=row["unsubscribed"],
        no_channel=row["no_channel"],
        variable_fields=list(CONTACT_VARIABLE_FIELDS) + [f"custom.{k}" for k in _custom_keys(session, ids)],
        suggested_channel_types=_suggested(counts),
        channel_id=channel.id if channel else None,
        channel_can_send=can_send,
    )


def audience_summary(
    *, session: Session, actor: User, kind: str, ref_id: int, channel_id: int | None = None
) -> AudienceSummary:
    """Total, subscribed per channel type, WhatsApp reach, not reachable, variable fields (S15)."""
    require(session, actor, perm.AUDIENCES_VIEW)
    ref = _ref_id(ref_id)
    if kind == "list":
        source = session.get(ContactList, ref)
        if source is None:
            raise AudienceError("That list no longer exists.")
    elif kind == "segment":
        source = _load_segment(session, ref)
    else:
        raise AudienceError(f"Unknown audience kind {kind!r} (list or segment).")
    channel = _channel(session, channel_id)
    ids = audience_contact_ids(kind, ref, session=session)
    return summarise_ids(session=session, ids=ids, kind=kind, ref_id=ref, name=source.name, channel=channel)


def csv_audience_summary(check, *, name: str = "") -> AudienceSummary:
    """The summary of a checked CSV (S14): rows, reach (unique valid numbers), invalid, columns."""
    counts = dict.fromkeys(CHANNEL_TYPES, 0)
    counts["whatsapp"] = check.valid
    return AudienceSummary(
        kind="csv",
        ref_id=None,
        name=name,
        total=check.rows,
        subscribed_by_channel=counts,
        reach=check.valid,
        invalid=check.invalid,
        duplicates=check.duplicates,
        variable_fields=list(check.columns),
        suggested_channel_types=["whatsapp"] if check.valid else [],
    )

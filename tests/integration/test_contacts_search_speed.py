"""Issue 16 §5 speed-ups give exactly today's answers (migration 0016), on SQLite and PostgreSQL.

Segment rules on custom fields ("equals", "is one of", "is not empty") are written on PostgreSQL as an overlap
with contacts.custom_terms (generated from custom_fields), which ix_contacts_custom_terms answers; here they
are compared, on
random bases with awkward custom fields (case, numbers, nested JSON, empty strings, JSON null, odd keys,
duplicate keys written as raw JSON), with the `->>` conditions used before. On SQLite both are the same SQL
(the rewrite is PostgreSQL-only), so there the test pins the semantics the rewrite must keep.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL (CI's second pass).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlmodel import Session

from app.models import Contact
from app.services.audiences import segment_sql
from app.services.audiences.segment_sql import rules_condition

RULE_KEYS = ["tier", "Tier", "city code", "x", "n", "deep", "empty", "a-b"]
KEYS = [*RULE_KEYS, "a:b", "x=y", "1:x", "Ünï"]  # stored keys a rule cannot name, made to look like terms
VALUES = ["gold", "Gold", "GOLD", "silver", "", " ", "é", "É", "ß", "1.50", "10", "y=z", "a=b", "2:x", "Gold "]
DATES = ["2025-03-01", "2025-03-02", "2026-01-15", "2026-01-15T10:00:00", "2025-3-1"]


def _value(rng: random.Random):
    roll = rng.random()
    if roll < 0.08:
        return None  # JSON null
    if roll < 0.16:
        return rng.choice([1, 1.5, 10, True, False])
    if roll < 0.22:
        return {"v": rng.choice(VALUES)} if rng.random() < 0.5 else [rng.choice(VALUES)]
    if roll < 0.35:
        return rng.choice(DATES)
    return rng.choice(VALUES)


def _custom_json(rng: random.Random) -> str:
    """Raw JSON text, so a key can appear twice (->> reads the last one)."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(["[]", '"text"', "null", "3"])  # not an object: no custom field is set
    pairs = [(rng.choice(KEYS), _value(rng)) for _ in range(rng.randrange(0, 5))]
    return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs) + "}"


def random_base(session: Session, rng: random.Random, n: int) -> None:
    now = datetime.now(UTC)
    session.execute(
        text(
            "INSERT INTO contacts (first_name, last_name, email, country, city, language, custom_fields, "
            "created_at, updated_at, channel_flags) VALUES (:f, :l, '', :c, '', '', :j, :now, :now, 0)"
        ).bindparams(),
        [
            {"f": f"F{i}", "l": f"L{i % 7}", "c": rng.choice(["FR", "DE", ""]), "j": _custom_json(rng), "now": now}
            for i in range(n)
        ],
    )
    # ...and some written through the ORM (dicts, as the app writes them).
    session.execute(
        insert(Contact),
        [
            {
                "first_name": f"G{i}",
                "last_name": "M",
                "country": "FR",
                "custom_fields": {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randrange(0, 4))},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n // 2)
        ],
    )
    session.commit()


def random_rules(rng: random.Random) -> tuple[list[dict], str]:
    rules = []
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice(RULE_KEYS)
        op = rng.choice(
            ["equals", "in", "is_not_empty", "equals", "is_empty", "not_equals", "contains", "before", "after"]
        )
        rule = {"field": f"custom.{key}", "op": op}
        if op in ("before", "after"):
            rule["value"] = rng.choice(DATES[:3])
        elif op == "in":
            rule["value"] = [v for v in rng.sample(VALUES, rng.randrange(1, 4)) if v.strip()] or ["gold"]
        elif op not in ("is_empty", "is_not_empty"):
            rule["value"] = rng.choice(VALUES).strip() or "gold"
        rules.append(rule)
    if rng.random() < 0.4:
        rules.append({"field": "country", "op": "equals", "value": "FR"})
    return rules, rng.choice(["all", "any"])


def matching_ids(session: Session, rules: list[dict], match: str) -> set[int]:
    return set(session.execute(select(Contact.id).where(rules_condition(rules, match))).scalars())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_custom_field_rules_match_the_json_extraction(session, monkeypatch, seed):
    rng = random.Random(seed)
    random_base(session, rng, 160)
    cases = [random_rules(rng) for _ in range(60)]
    got = [matching_ids(session, rules, match) for rules, match in cases]
    # Today's conditions: every rule as `->>` / json_extract, whatever the database.
    monkeypatch.setattr(segment_sql, "_indexed_custom", lambda key, terms, default: default)
    want = [matching_ids(session, rules, match) for rules, match in cases]
    for (rules, match), g, w in zip(cases, got, want, strict=True):
        assert g == w, (match, rules)
    assert any(w for w in want) and any(not w for w in want)  # the cases are not all trivial


def test_broad_search_pages_equal_sorting_every_match(session, make_user, monkeypatch):
    """Past the count cap, when the page is not among the first names in name order, it is cut from the
    first matching distinct last names plus the other arms' matches (contact_search._page_by_last_names);
    every page equals today's query: all matches sorted by (last name, first name, id)."""
    from app.services.audiences import contact_search

    rng = random.Random(16)
    now = datetime.now(UTC)
    syllables = ["an", "na", "Mü", "ll", "er", "o", "jo", "hn", "Zed", "zz", " ", "_", "%"]
    rows = []
    for i in range(400):
        rows.append(
            {
                "first_name": "".join(rng.choice(syllables) for _ in range(rng.randrange(1, 3))).strip(),
                # late in name order, many contacts per last name: the broad case of issue 16 §5
                "last_name": rng.choice(["Aa", "Ab", ""])
                if i % 3 == 0
                else f"Zz{rng.randrange(30)}{rng.choice(syllables)}",
                "email": f"{rng.choice(['anna', 'jo', 'zed'])}{i}@example.com",
                "country": rng.choice(["FR", "DE"]),
                "custom_fields": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(insert(Contact), rows)
    session.commit()
    admin = make_user("admin")
    monkeypatch.setattr(contact_search, "CONTACTS_COUNT_CAP", 12)
    monkeypatch.setattr(contact_search, "NAME_WALK_ROWS", 40)
    terms = ["zz", "Zz1", "z2", "an", "o", "zed", "jo zz", "@example", "Mü", "n", "zz1 ", "_"]
    cases = [(t, c, p) for t in terms for c in ("", "FR") for p in (1, 2, 5)]
    walked = {"n": 0}
    original = contact_search._matching_last_names

    def counting(*args):
        walked["n"] += 1
        return original(*args)

    monkeypatch.setattr(contact_search, "_matching_last_names", counting)
    for budget in (10_000, 3):  # ...and with a walk budget too small, falling back to sorting every match
        monkeypatch.setattr(contact_search, "LAST_NAME_WALK", budget)
        got = {
            case: [
                r["id"]
                for r in contact_search.contacts_page(
                    session=session, actor=admin, search=case[0], country=case[1], page=case[2], page_size=6
                ).rows
            ]
            for case in cases
        }
        with monkeypatch.context() as m:
            m.setattr(contact_search, "_page_by_last_names", lambda *args: None)
            for case in cases:
                want = [
                    r["id"]
                    for r in contact_search.contacts_page(
                        session=session, actor=admin, search=case[0], country=case[1], page=case[2], page_size=6
                    ).rows
                ]
                assert got[case] == want, (budget, case)
    assert walked["n"] > 10  # the new path did run

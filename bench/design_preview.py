"""Benchmark: the wizard's Design-step preview per mapping change (issue 5, item 3), on SQLite.

Builds a list of N contacts (default 200,000, a quarter without a first name) in a temporary SQLite
database, then times, per mapping change, `campaigns.design_preview()` (bounded: LIMIT for the samples,
one SQL aggregate for the "skipped" count) against the previous way, measured in the same run: every
recipient read into Python and resolved (`audiences.recipients.iter_recipients` + `resolve`). Prints
the figures (median of --runs) and checks that both give the same counts. Timings are for reading, not
for asserting: the machine may be shared.

    .venv/bin/python bench/design_preview.py --contacts 200000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUBCAST_ENV", "test")
os.environ.setdefault("HUBCAST_SECRET_KEY", "bench-secret-key-that-is-long-enough-0123456789")

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from app.db import make_engine  # noqa: E402
from app.domain.variables import resolve  # noqa: E402
from app.migrate import upgrade_to_head  # noqa: E402
from app.models import Campaign, Channel, Contact, ContactIdentity, ContactList, ListMembership, Template, User  # noqa: E402
from app.timeutil import utcnow  # noqa: E402

BODY = [{"type": "BODY", "text": "Hi {{1}}, see you in {{2}}."}]
MAPPINGS = {
    "first_name, no fallback": {
        "body.1": {"source": "field", "key": "first_name"},
        "body.2": {"source": "text", "value": "Lyon"},
    },
    "first_name or city": {
        "body.1": {"source": "field", "key": "first_name"},
        "body.2": {"source": "field", "key": "city"},
    },
    "with a fallback": {
        "body.1": {"source": "field", "key": "first_name", "fallback": "friend"},
        "body.2": {"source": "text", "value": "Lyon"},
    },
}


def build(url: str, n: int) -> tuple[int, int]:
    engine = make_engine(url)
    now = utcnow()
    with Session(engine) as s:
        user = User(email="b@example.com", password_hash="x", role="admin")
        channel = Channel(name="Sandbox", kind="sandbox", status="connected")
        clist = ContactList(name="All")
        s.add_all([user, channel, clist])
        s.commit()
        template = Template(channel_id=channel.id, name="t", language="en", status="APPROVED", components=BODY)
        s.add(template)
        s.commit()
        ids = (user.id, channel.id, clist.id, template.id)
    with engine.begin() as conn:
        for start in range(0, n, 20_000):
            part = range(start, min(n, start + 20_000))
            conn.execute(
                insert(Contact.__table__),
                [
                    {
                        "id": i + 1,
                        "first_name": "" if i % 4 == 0 else f"Ana{i}",
                        "last_name": "",
                        "email": "",
                        "country": "FR",
                        "city": "" if i % 7 == 0 else "Lyon",
                        "language": "",
                        "custom_fields": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in part
                ],
            )
            conn.execute(
                insert(ContactIdentity.__table__),
                [
                    {
                        "contact_id": i + 1,
                        "channel_type": "whatsapp",
                        "address": f"+3361{i:07d}",
                        "subscribed": True,
                        "subscription_changed_at": now,
                        "created_at": now,
                    }
                    for i in part
                ],
            )
            conn.execute(
                insert(ListMembership.__table__),
                [{"list_id": ids[2], "contact_id": i + 1, "source": "manual", "added_at": now} for i in part],
            )
    with Session(engine) as s:
        campaign = Campaign(
            name="c",
            audience_kind="list",
            audience_list_id=ids[2],
            channel_id=ids[1],
            template_id=ids[3],
            variable_mapping={},
        )
        s.add(campaign)
        s.commit()
        return ids[0], campaign.id


def previous_way(session: Session, campaign: Campaign) -> tuple[int, int]:
    from app.services.audiences.recipients import iter_recipients

    examined = skipped = 0
    for _address, _cid, contact, row in iter_recipients(session, campaign):
        examined += 1
        skipped += not resolve(["body.1", "body.2"], campaign.variable_mapping, contact=contact, row=row).ok
    return examined, skipped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from app.services.campaigns.design_preview import design_preview

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade_to_head(url)
        user_id, campaign_id = build(url, args.contacts)
        engine = make_engine(url)
        print(f"{args.contacts:,} contacts on SQLite; load average {os.getloadavg()[0]:.1f}")
        print("| mapping | bounded preview (s) | previous full read (s) | skipped |")
        print("|---|---|---|---|")
        for name, mapping in MAPPINGS.items():
            with Session(engine, expire_on_commit=False) as s:
                campaign = s.get(Campaign, campaign_id)
                campaign.variable_mapping = mapping
                s.add(campaign)
                s.commit()
                actor = s.get(User, user_id)
                new_t, old_t = [], []
                for _ in range(args.runs):
                    t = time.perf_counter()
                    preview = design_preview(session=s, actor=actor, campaign_id=campaign_id)
                    new_t.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    old = previous_way(s, campaign)
                    old_t.append(time.perf_counter() - t)
                assert (preview.examined, preview.skipped) == old, (preview, old)
                print(
                    f"| {name} | {statistics.median(new_t):.3f} | {statistics.median(old_t):.3f} "
                    f"| {preview.skipped:,} of {preview.examined:,} |"
                )
        engine.dispose()


if __name__ == "__main__":
    main()

"""Issue 13, item 7: a basic user looping expensive reads (a contact search that matches nothing scans the whole
contacts table) from several tabs cannot slow other users down.

The attacker: a basic user, 3 tabs, each firing the Contacts page's search with a new term every time (so no
cache helps), as fast as answers come. The victim: another user on All Campaigns, whose cheap event's round
trip is measured before and during the attack. Both travel the app's real Reflex event path in-process
(tests/support/reflex_client.py), like tests/hardening/test_attacks_dos.py.

What is asserted is an order of events, not a time: one of the other user's events is fired and answered while
an attacker's search query is running (`contact_search.contacts_page`, wrapped to note when each call starts and
ends). A query that held the event loop could not allow that: nothing else runs on the loop until it returns.
The victim keeps clicking until it happens (a condition, on a busy machine too); round trips are reported only.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from app.db import get_engine
from app.domain import permissions as perm
from app.services.audiences import contact_search
from state.campaigns import CampaignsState
from state.contacts import ContactsState
from tests.hardening.test_attacks_dos import _answered, _fire
from tests.support.hardening import record
from tests.support.reflex_client import cookie_for, event_name

CONTACTS = 150_000
ATTACKER_TABS = 3


def _big_base(n: int) -> None:
    rows = [
        {
            "f": f"First{i}",
            "l": f"Last{i % 5000:05d}",
            "e": f"person{i}@example.com",
            "c": ("FR", "DE", "US", "AU")[i % 4],
            "city": "Somewhere",
            "lang": "en",
        }
        for i in range(n)
    ]
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contacts (first_name, last_name, email, country, city, language, custom_fields, "
                "created_at, updated_at) VALUES (:f, :l, :e, :c, :city, :lang, '{}', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)"
            ),
            rows,
        )


def test_a_user_looping_expensive_searches_does_not_slow_others(world, redis_client, reflex_backend, monkeypatch):
    _big_base(CONTACTS)
    queries: list[tuple[float, float]] = []  # (started, ended) of every search query, on the loop's clock
    real_page = contact_search.contacts_page

    def timed_page(**kwargs):
        started = time.monotonic()
        try:
            return real_page(**kwargs)
        finally:
            queries.append((started, time.monotonic()))

    monkeypatch.setattr(contact_search, "contacts_page", timed_page)
    attacker_cookie, _ = cookie_for(world, perm.BASIC, redis_client)
    victim_cookie, _ = cookie_for(world, perm.ADVANCED, redis_client)
    contacts_search, campaigns_search = (
        event_name(ContactsState, "set_search"),
        event_name(CampaignsState, "set_search"),
    )

    async def scenario(new_client):
        victim = new_client(ip="192.0.2.10")
        await victim.connect(victim_cookie, path="/campaigns")
        quiet = []
        for i in range(3):
            await _fire(victim, campaigns_search, {"value": f"quiet {i}"}, "/campaigns")
            quiet.append(await _answered(victim))
        tabs = [new_client(ip="198.51.100.7") for _ in range(ATTACKER_TABS)]
        for tab in tabs:
            await tab.connect(attacker_cookie, path="/contacts")
        # One search alone: what each costs on this machine now.
        started = time.monotonic()
        await _fire(tabs[0], contacts_search, {"value": "nobody-is-called-this-0"}, "/contacts")
        await _answered(tabs[0], timeout=120)
        one_search_s = time.monotonic() - started
        stop = asyncio.Event()
        answered = [0]
        loop = asyncio.get_running_loop()  # loop.time() is time.monotonic(): one clock with `queries`

        async def loop_searches(tab, t):
            n = 0
            while not stop.is_set():
                n += 1
                await _fire(tab, contacts_search, {"value": f"nobody-is-called-this-{t}-{n}"}, "/contacts")
                try:
                    await _answered(tab, timeout=120)
                except TimeoutError:
                    continue
                answered[0] += 1

        def inside_a_search(fired: float, done: float) -> bool:
            return any(q_started < fired and done < q_ended for q_started, q_ended in list(queries))

        tasks = [asyncio.create_task(loop_searches(tab, t)) for t, tab in enumerate(tabs)]
        deadline = loop.time() + 60
        while answered[0] < ATTACKER_TABS and loop.time() < deadline:  # the attack is in full swing
            await asyncio.sleep(0.01)
        during, clicks = [], []  # round trips; (fired, answered) of each of the other user's events
        deadline = loop.time() + 300
        i = 0
        # Until one of the other user's events was served inside a running search query, and at least 6 events.
        while loop.time() < deadline and (len(during) < 6 or not any(inside_a_search(f, d) for f, d in clicks)):
            fired = loop.time()
            await _fire(victim, campaigns_search, {"value": f"busy {i}"}, "/campaigns")
            during.append(await _answered(victim, timeout=120))
            clicks.append((fired, loop.time()))
            i += 1
        stop.set()
        await asyncio.gather(*tasks)
        victim_search = (await victim.substate(CampaignsState)).search
        attacker_search = (await tabs[0].substate(ContactsState)).search
        for c in [victim, *tabs]:
            await c.close()
        served_inside = sum(inside_a_search(f, d) for f, d in clicks)
        return quiet, during, answered[0], one_search_s, victim_search, attacker_search, served_inside

    started = time.monotonic()
    quiet, during, attacks, one_search_s, victim_search, attacker_search, served_inside = reflex_backend(scenario)
    worst = max(during)
    last = f"busy {len(during) - 1}"
    ok = served_inside > 0 and victim_search == last and attacks >= ATTACKER_TABS
    record(
        "handlers",
        f"a basic user looping full-scan contact searches from {ATTACKER_TABS} tabs while another user clicks",
        ok=ok,
        checked=attacks + len(during),
        refused_correctly=0,
        allowed_correctly=attacks + len(during),
        contacts=CONTACTS,
        one_search_s=round(one_search_s, 3),
        attacker_searches_answered=attacks,
        other_user_events=len(during),
        other_user_events_served_inside_a_search=served_inside,
        other_user_event_worst_s=round(worst, 3),
        other_user_event_quiet_s=round(max(quiet), 3),
        duration_s=round(time.monotonic() - started, 1),
    )
    assert attacks >= ATTACKER_TABS and attacker_search.startswith("nobody-is-called-this-")
    assert victim_search == last  # every one of the other user's events was applied, in order
    assert served_inside > 0, (
        f"none of {len(during)} events of another user was answered while a basic user's search was running "
        f"(worst round trip {worst:.2f} s, quiet {max(quiet):.3f} s, one search alone {one_search_s:.2f} s)"
    )

"""Plugin: the app's real Reflex event processing in-process (`reflex_backend`) and a `world` to attack.

The client and helpers live in tests/support/reflex_client.py; it is imported only when a test asks for
these fixtures (it imports the whole app)."""

from __future__ import annotations

import pytest

from tests.support.wait import run_coroutine


@pytest.fixture()
def reflex_backend(database_url, redis_client, monkeypatch):
    """`reflex_backend(scenario)` runs `await scenario(new_client)` against the app's real event processing;
    `new_client(ip=...)` opens a `CraftedClient` tab (see tests/support/reflex_client.py)."""
    from reflex.istate.manager.memory import StateManagerMemory

    from tests.support.reflex_client import RX_APP, CraftedClient, Outcome

    recorder: dict = {}

    async def fake_emit(event, data=None, to=None, **kwargs):
        if event == "event" and to is not None:
            out = recorder.setdefault(to, Outcome())
            out.frontend_events.extend(data.events)
            if data.delta:
                out.deltas.append(data.delta)

    original_handler = RX_APP.backend_exception_handler

    def recording_exception_handler(exc: Exception):
        recorder.setdefault("__exceptions__", []).append(exc)
        return original_handler(exc)

    monkeypatch.setattr(RX_APP.event_namespace, "emit", fake_emit)
    monkeypatch.setattr(RX_APP, "backend_exception_handler", recording_exception_handler)
    monkeypatch.setattr(RX_APP, "_event_processor", None)

    def run(scenario):
        async def main():
            monkeypatch.setattr(RX_APP, "_state_manager", StateManagerMemory())
            with RX_APP.set_contexts():
                async with RX_APP._setup_event_processor():
                    try:
                        return await scenario(lambda **kw: CraftedClient(recorder, **kw))
                    finally:
                        await RX_APP.state_manager.close()

        return run_coroutine(main())

    return run


@pytest.fixture()
def world(session, make_user):
    """User 1 is the admin a crafted event would target; one row of every catalog kind exists."""
    from app.models import Campaign, Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, Template

    victim = make_user("admin", email="first-admin@example.com")
    assert victim.id == 1
    channel = Channel(
        name="Sandbox",
        kind="sandbox",
        phone_number_id="100",
        access_token="secret-token",
        app_secret="secret-app",
        status="connected",
    )
    session.add(channel)
    session.flush()
    template = Template(channel_id=channel.id, name="spring_sale", language="en_US", status="APPROVED")
    contact = Contact(first_name="Ada", last_name="Lovelace", country="GB", city="London")
    session.add_all([template, contact])
    session.flush()
    session.add(ContactIdentity(contact_id=contact.id, channel_type="whatsapp", address="+447700900123"))
    contact_list = ContactList(name="VIP", created_by_id=victim.id)
    session.add(contact_list)
    session.flush()
    session.add(ListMembership(list_id=contact_list.id, contact_id=contact.id))
    session.add(Segment(name="British", rules=[{"field": "country", "op": "equals", "value": "GB"}]))
    session.add(
        Campaign(
            name="Spring sale", status="draft", channel_id=channel.id, template_id=template.id, created_by_id=victim.id
        )
    )
    session.commit()
    return {"victim": victim, "session": session, "make_user": make_user}

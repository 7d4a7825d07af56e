"""The sender needs a `Messenger`, not HTTP: one job run with a recording stand-in (real database and
Redis) sends each claimed row exactly once and stores what the messenger answered."""

from __future__ import annotations

import asyncio
import json

from sqlmodel import select

from app.db import get_engine
from app.models import AuditLog
from app.services.sending.batch_runner import load_context, run_batch
from app.services.sending.config import SendingConfig
from app.services.sending.keys import posted_key, recipient_id_from_callback
from app.services.sending.lifecycle import start_campaign
from app.whatsapp.errors import RETRYABLE, Classification, WhatsAppApiError, WhatsAppError, classify
from app.whatsapp.messenger import Messenger, SendResult
from tests.support.factories import (
    campaign_row,
    make_campaign,
    make_channel,
    make_list,
    make_template,
    number,
    recipients,
)


class RecordingMessenger:
    """Answers like WhatsApp without a network: a wamid, or the error set for that number."""

    def __init__(self, refuse: dict[str, WhatsAppApiError] | None = None):
        self.refuse = refuse or {}
        self.sends: list[tuple[str, str | None, list]] = []
        self.closed = False

    async def send_template(self, to, template_name, language_code, components=None, biz_opaque_callback_data=None):
        self.sends.append((to, biz_opaque_callback_data, list(components or [])))
        await asyncio.sleep(0)  # other sends interleave, as they would over a network
        if to in self.refuse:
            raise self.refuse[to]
        return SendResult(message_id=f"wamid.fake.{biz_opaque_callback_data}")

    async def aclose(self) -> None:
        self.closed = True


def _error(code, title, ambiguous=False) -> WhatsAppApiError:
    error = WhatsAppError(code=code, title=title, http_status=None if ambiguous else 400)
    return WhatsAppApiError(error, Classification(RETRYABLE) if ambiguous else classify(error), ambiguous=ambiguous)


def _start(session, make_user, size: int):
    channel = make_channel(session, "http://messenger.invalid")
    template = make_template(session, channel)
    campaign = make_campaign(session, channel, template, make_list(session, [number(i) for i in range(size)]))
    start_campaign(session=session, actor=make_user("basic"), campaign_id=campaign.id)
    return campaign


def test_a_job_sends_each_claimed_row_once_through_any_messenger(session, redis_client, redis_url, make_user):
    campaign = _start(session, make_user, 120)
    messenger = RecordingMessenger(
        {number(5): _error(131026, "Message undeliverable"), number(7): _error(None, "Timeout", ambiguous=True)}
    )
    assert isinstance(messenger, Messenger)
    ctx = load_context(get_engine(), campaign.id, SendingConfig(job_budget_s=5))

    stats = asyncio.run(run_batch(get_engine(), ctx, redis_url, messenger=messenger))

    rows = recipients(campaign.id)
    sent_ids = [recipient_id_from_callback(callback) for _, callback, _ in messenger.sends]
    assert sorted(sent_ids) == sorted(r.id for r in rows), "every row sent exactly once, carrying its id"
    assert (stats.claimed, stats.sent, stats.failed, stats.unknown) == (120, 118, 1, 1)
    by_address = {r.address: r for r in rows}
    assert (by_address[number(5)].status, by_address[number(5)].error_code) == ("failed", 131026)
    assert by_address[number(7)].status == "unknown" and by_address[number(7)].message_id is None
    others = [r for a, r in by_address.items() if a not in (number(5), number(7))]
    assert all(r.status == "sent" and r.message_id == f"wamid.fake.hc:{campaign.id}:{r.id}" for r in others)
    to, _, components = next(s for s in messenger.sends if s[0] == number(3))
    assert "Ana3" in json.dumps(components), "the row's own values are rendered into the payload"
    posted = {int(m) for m in redis_client.smembers(posted_key(campaign.id))}
    assert posted == set(sent_ids), "every row is marked possibly-posted before its request"
    assert not messenger.closed, "a messenger passed in belongs to the caller"

    again = asyncio.run(run_batch(get_engine(), ctx, redis_url, messenger=messenger))
    assert again.claimed == 0 and len(messenger.sends) == 120, "nothing is ever sent twice"


def test_an_error_that_stops_the_campaign_pauses_it_and_gives_every_row_back(
    session, redis_client, redis_url, make_user
):
    campaign = _start(session, make_user, 40)
    expired = _error(190, "Access token has expired")
    messenger = RecordingMessenger({number(i): expired for i in range(40)})
    ctx = load_context(get_engine(), campaign.id, SendingConfig(job_budget_s=5))

    stats = asyncio.run(run_batch(get_engine(), ctx, redis_url, messenger=messenger))

    assert "#190" in stats.stopped_reason
    paused = campaign_row(campaign.id)
    assert paused.status == "paused" and "#190" in paused.pause_reason
    assert all(r.status == "queued" and r.attempts == 0 for r in recipients(campaign.id)), (
        "refused for the whole campaign: nobody used an attempt, resume sends to everyone"
    )
    assert session.exec(select(AuditLog).where(AuditLog.action == "campaign.auto_pause")).first() is not None

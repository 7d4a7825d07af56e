"""The Redis keys a campaign's send jobs share, and the epoch of its "posted" set.

Redis holds no truth about recipients (the database does); these keys are what workers tell each other:
- `alive_key`: a send job for the campaign ran recently (the sweeper re-enqueues campaigns without one);
- `posted_key`: row ids whose POST may have left (added just before the request, in the same round trip
  as the rate tokens), so a row claimed but absent from it was provably never sent;
- `posted_epoch_key`: since when, and in which Redis lifetime, that set is complete;
- `error_stats_key`: attempted / failed counts since the campaign (re)started, for the auto-pause.
"""

from __future__ import annotations

import re
import time

POSTED_TTL_S = 14 * 24 * 3600


def alive_key(campaign_id: int) -> str:
    return f"hubcast:sending:{campaign_id}:alive"


def posted_key(campaign_id: int) -> str:
    """Row ids whose POST may have left (added just before the request). A row claimed but absent
    from this set was never posted, so the sweeper may safely queue it again after a crash."""
    return f"hubcast:sending:{campaign_id}:posted"


def posted_epoch_key(campaign_id: int) -> str:
    """ "<redis run_id>:<unix time>": since when (and in which Redis lifetime) the posted set is
    complete. A restarted Redis (new run_id, maybe an old snapshot) or a flush invalidates it."""
    return f"hubcast:sending:{campaign_id}:posted-epoch"


def error_stats_key(campaign_id: int) -> str:
    """Send-time outcomes since the campaign (re)started; resume clears it (listmonk resets its error
    counter the same way, otherwise a resumed campaign would pause again at once)."""
    return f"hubcast:sending:{campaign_id}:errors"


def _epoch_value(run_id: str) -> str:
    # The app's clock, like claimed_at, which the sweeper compares it with.
    return f"{run_id}:{time.time():.3f}"


async def ensure_posted_epoch(aredis, campaign_id: int) -> None:
    """Called by every job before it claims: start a new epoch if Redis restarted or was flushed."""
    run_id = (await aredis.info("server")).get("run_id", "")
    current = await aredis.get(posted_epoch_key(campaign_id))
    current = current.decode() if isinstance(current, bytes) else current
    if current and current.split(":")[0] == run_id:
        return
    await aredis.set(posted_epoch_key(campaign_id), _epoch_value(run_id), ex=POSTED_TTL_S, nx=not current)


def ensure_posted_epoch_sync(redis_client, campaign_id: int) -> None:
    run_id = redis_client.info("server").get("run_id", "")
    current = redis_client.get(posted_epoch_key(campaign_id))
    current = current.decode() if isinstance(current, bytes) else current
    if current and current.split(":")[0] == run_id:
        return
    redis_client.set(posted_epoch_key(campaign_id), _epoch_value(run_id), ex=POSTED_TTL_S)


def held_key(campaign_id: int) -> str:
    """Row ids whose send WhatsApp answered `held_for_quality_assessment` / `paused`, scored by when (issue 12):
    while any is unresolved the campaign takes no new rows; a status webhook for the row removes it."""
    return f"hubcast:sending:{campaign_id}:held"


def outage_key(campaign_id: int) -> str:
    """Since when (unix time) WhatsApp has been failing this campaign's sends (5xx, 131000, 131016) without a
    success in between; the send that succeeds next deletes it."""
    return f"hubcast:sending:{campaign_id}:outage"


# `biz_opaque_callback_data`, which WhatsApp echoes in every status webhook of a send (issue 12): namespaced,
# naming the campaign and the row. Rows sent before that carry "123" or "r:123", still read.
_CALLBACK = re.compile(r"^(?:[A-Za-z_]+[:=])?(\d{1,18})$")
_NAMESPACED = re.compile(r"^hc:(\d{1,18}):(\d{1,18})$")


def callback_data(campaign_id: int, row_id: int) -> str:
    return f"hc:{campaign_id}:{row_id}"


def recipient_id_from_callback(value: str | None) -> int | None:
    """Our recipient row id from `biz_opaque_callback_data` ("hc:<campaign>:<row>", "123" or "r:123")."""
    text = (value or "").strip()
    namespaced = _NAMESPACED.match(text)
    if namespaced:
        return int(namespaced.group(2))
    match = _CALLBACK.match(text)
    return int(match.group(1)) if match else None


def campaign_id_from_callback(value: str | None) -> int | None:
    """The campaign a namespaced callback names; None for the older forms."""
    namespaced = _NAMESPACED.match((value or "").strip())
    return int(namespaced.group(1)) if namespaced else None

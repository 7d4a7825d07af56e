"""Jobs the worker runs. Kept importable without Reflex (workers never load the web app).

Jobs take ids only and open their own database session; the services do the work. They import the
services when they run, so that importing this module (RQ, the CLI) stays cheap; a worker imports the
sending stack up front with `preload`.
"""

from __future__ import annotations

import importlib
import logging


def ping() -> str:
    """A no-op round trip through Redis and a worker: health checks and tests enqueue it."""
    return "pong"


def send_campaign_batch(campaign_id: int) -> dict:
    """Send the next chunk of a campaign; re-enqueues itself while queued rows remain."""
    from app.services.sending.job import send_campaign_batch as run

    return run(int(campaign_id))


def scheduler_tick() -> list[int]:
    """Start the Scheduled campaigns that are due (each exactly once, whoever else ticks)."""
    from app.services.sending.scheduler import start_due_campaigns

    return start_due_campaigns()


def sweep() -> dict:
    """Crash safety: reconcile rows stuck in `sending`, re-enqueue campaigns whose jobs Redis lost."""
    from app.services.sending.sweeper import sweep as run

    return run()


def purge_uploads() -> list[int]:
    """Delete audience CSVs past their retention (their campaigns ended long enough ago) and dead scratch folders."""
    from app.db import session_scope
    from app.services.audiences.upload_retention import purge_expired_uploads, sweep_scratch

    with session_scope() as session:
        purged = purge_expired_uploads(session=session)
    sweep_scratch()
    return purged


def fill_dashboard_days() -> int:
    """Count the home dashboard's newly settled days once, here, so no user waits for them."""
    from app.db import session_scope
    from app.services.campaigns.daily_stats import fill_settled_days
    from app.services.campaigns.dashboard import live_sent_by_day

    with session_scope() as session:
        return fill_settled_days(session, live_sent_by_day)


def periodic_tick() -> dict:
    """What every worker runs every few seconds (under a Redis lock, so once per interval overall)."""
    started = scheduler_tick()
    try:
        purged = purge_uploads()
    except Exception:  # a file-system hiccup must not stop the scheduler or the crash sweeper
        logging.getLogger(__name__).exception("retention: could not purge audience uploads")
        purged = []
    try:
        days = fill_dashboard_days()
    except Exception:  # the dashboard counts the day itself then; sending must not stop for it
        logging.getLogger(__name__).exception("dashboard: could not store the settled days' counts")
        days = 0
    return {"started": started, "uploads_purged": purged, "dashboard_days_counted": days, **sweep()}


def preload() -> None:
    """Import the sending stack when the worker starts, not inside the first send job: that first
    import costs a second of CPU, which on a small server starves the other processes and makes the
    first second of a campaign burst."""
    for module in (
        "app.services.sending.scheduler",
        "app.services.sending.job",
        "app.services.sending.sweeper",
        "redis.asyncio",
        "app.whatsapp.http",
    ):
        importlib.import_module(module)

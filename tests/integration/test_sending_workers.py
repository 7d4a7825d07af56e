"""Two `hubcast worker` processes share one 5,000-recipient campaign against the Sandbox capped at
200 msg/s: every recipient gets exactly one POST, and the rate the Sandbox saw never exceeds the cap
by more than 5% over any one-second window (the shared GCRA limiter in Redis does the shaping).

The Sandbox stamps a request when its handler starts. When the machine is busy (the 1-minute load reached
the number of cores during the send: other suites share it), a worker or the Sandbox is descheduled for
100-200 ms now and then and the requests of that stall land together: a sliding one-second window then reads
up to ~10% over although the tokens were handed out evenly. The 5-second window holds to 5% always; the
one-second bound is 5% on a machine that is not busy, 25% on one that is (the figure is printed)."""

from __future__ import annotations

import os

import pytest

from app.services.sending.lifecycle import start_campaign
from tests.support.factories import (
    campaign_row,
    make_campaign,
    make_channel,
    make_list,
    make_template,
    number,
    recipients,
)
from tests.support.load import PeakLoad
from tests.support.processes import stop_process, worker_process
from tests.support.sandbox import max_per_window, run_sandbox
from tests.support.wait import wait_until

CAP = 200
N = 5000


@pytest.mark.timeout(150)
def test_two_workers_share_a_campaign_at_the_capped_rate(
    session, redis_client, redis_url, database_url, make_user, tmp_path
):
    user = make_user("basic")
    with run_sandbox(tmp_path / "sandbox", mps=CAP) as sb:
        channel = make_channel(session, sb.url, mps=CAP)
        template = make_template(session, channel)
        clist = make_list(session, [number(i) for i in range(N)])
        campaign = make_campaign(session, channel, template, clist)
        workers = [worker_process(tmp_path, database_url, redis_url, f"worker{i}") for i in range(2)]
        load = PeakLoad().start()
        try:
            start_campaign(session=session, actor=user, campaign_id=campaign.id)
            done = wait_until(
                lambda: campaign_row(campaign.id).status in ("sent", "failed", "paused") and campaign_row(campaign.id),
                timeout=120,
                interval=0.5,
                message="campaign finished",
            )
        finally:
            load.stop()
            for w in workers:
                stop_process(w)
        assert done.status == "sent", done.pause_reason
        log = sb.log()
        entries = sb.entries()

    assert log["total"] == N and len(log["per_recipient"]) == N
    assert not log["duplicates"], "exactly one POST per recipient"
    rows = recipients(campaign.id)
    assert all(r.status == "sent" and r.message_id for r in rows)
    assert done.sent_count == N
    busiest, busiest_5s = max_per_window(entries, 1.0), max_per_window(entries, 5.0)
    print(
        f"busiest 1-second window: {busiest} sends, 5-second: {busiest_5s} (cap {CAP}/s); "
        f"machine: {load.describe()}; rejected: {log['rejected']}"
    )
    assert busiest_5s <= 5 * CAP * 1.05, f"{busiest_5s} sends in five seconds, cap {CAP}/s"
    busy = load.peak >= (os.cpu_count() or 1)  # this test's own rule, on top of PeakLoad's (overloaded, saturated)
    assert busiest <= CAP * load.one_second_bound(busy=busy), f"{busiest} sends in one second, cap {CAP}"
    for i in range(2):  # both workers took part
        assert "send campaign" in (tmp_path / f"worker{i}.log").read_text(errors="replace")

"""Every knob of the sending engine in one object (listmonk keeps its sending limits together too).

Defaults suit production; each can be overridden from the environment as `HUBCAST_SEND_<FIELD>`
(e.g. `HUBCAST_SEND_STUCK_GRACE_S=5`), which is also how tests and benchmarks tune worker processes.

Why these numbers:
- `concurrency` 128 requests in flight per job: with Meta's ~150 ms latency, 1,000 msg/s needs
  ~150 in flight across all workers; 128 per worker lets two workers reach the top tier.
- `claim_window_s`: a claim takes at most about this many seconds of the channel's throughput (and at
  most `batch_size` rows), so rows marked `sending` are sent soon after; the crash sweeper's grace
  (`stuck_grace_s`) must stay well above the time a claimed row can wait.
- `rate_headroom`, `rate_burst_s`, `rate_group_s`: a campaign job takes its tokens "now or never" in
  groups (no reservation a late wake-up could waste), so any one-second window holds at most
  headroom x cap + burst + group: 985 + 10 + 4 < 1,000 at a 1,000/s cap.
- `job_budget_s`: a send job stops after this long and re-enqueues itself, so other campaigns and the
  RQ bookkeeping get a turn; `lanes` jobs run per campaign so several workers share it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from app.settings import SEND_ENV_PREFIX, env_with_prefix


@dataclass(frozen=True)
class SendingConfig:
    batch_size: int = 500  # rows claimed at most per database round trip
    concurrency: int = 128  # HTTP requests in flight per job
    lanes: int = 4  # send jobs enqueued per campaign (several workers share a campaign)
    claim_window_s: float = 1.0  # a claim holds at most this many seconds of the channel's rate
    job_budget_s: float = 60.0  # a job re-enqueues itself after this long
    max_attempts: int = 5  # retryable errors: attempts before the row fails with the last reason
    backoff_base_s: float = 2.0  # retry n waits base * 2^(n-1), with full jitter, capped
    backoff_cap_s: float = 300.0
    rate_limit_cooldown_s: float = 1.0  # shared pause after 130429 / HTTP 429 without Retry-After
    max_error_ratio: float = 0.5  # failed / attempted above this auto-pauses the campaign ...
    error_ratio_min_sample: int = 100  # ... once at least this many rows were attempted
    request_timeout_s: float = 15.0
    stuck_grace_s: float = 600.0  # a row `sending` this long without a wamid is reconciled or `unknown`
    alive_ttl_s: float = 60.0  # a campaign whose jobs gave no sign of life this long is re-enqueued
    tick_interval_s: float = 2.0  # the scheduler/sweeper tick in each worker
    rate_burst_s: float = 0.01  # GCRA tolerance: at most this many seconds of the rate in one burst
    rate_headroom: float = 0.985  # aim this fraction of the channel's cap: network jitter must not cross it
    max_late_s: float = 0.03  # a rate slot missed by more than this is re-reserved, not used late
    rate_group_s: float = 0.005  # campaign sends take rate tokens in groups of this many seconds of the rate
    # The streaming freeze (freeze.py): "Send" freezes the first chunk itself (small: the first message
    # leaves within a second), send jobs freeze the rest a chunk per transaction, holding a lease that a
    # crashed freezer's successor takes over once it is this old.
    freeze_first_chunk: int = 1000
    freeze_chunk: int = 5000
    freeze_lease_s: float = 15.0
    # Issue 12 (real WhatsApp behaviour):
    # Meta failing (5xx, #131000, #131016) with no success for this long pauses the campaign; its rows wait
    # (queued, attempts given back) instead of failing after `max_attempts`: a long incident loses nobody.
    outage_pause_s: float = 120.0
    # Throttled (#4, #80007, #130429, HTTP 429): the shared cool-down doubles with each throttle in a row
    # (base `rate_limit_cooldown_s`, with jitter, capped here) unless Meta says how long (Retry-After,
    # X-Business-Use-Case-Usage), and the channel's rate halves for `throttle_slow_s` (at most
    # `throttle_slow_max_halvings` times).
    throttle_cap_s: float = 60.0
    throttle_slow_s: float = 30.0
    throttle_slow_max_halvings: int = 4
    # Sends answered `held_for_quality_assessment` / `paused`: the campaign takes no new rows until their
    # statuses arrive by webhook, or at most this long after the last one was held.
    held_wait_max_s: float = 600.0
    # Status events that never matched a recipient (an unknown wamid) are deleted after this long; the
    # sweeper looks for them at most once per `orphan_event_sweep_s`.
    orphan_event_retention_s: float = 7 * 24 * 3600.0
    orphan_event_sweep_s: float = 3600.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SendingConfig:
        environ = env_with_prefix(SEND_ENV_PREFIX) if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"HUBCAST_SEND_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = type(f.default)(raw)
        return cls(**values)


def sending_config() -> SendingConfig:
    return SendingConfig.from_env()

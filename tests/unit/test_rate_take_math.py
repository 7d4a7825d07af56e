"""The "take now or say when" GCRA arithmetic that campaign jobs use (mirrors the Redis script)."""

import random

from app.services.sending.rate_limit import US, ChannelRate, gcra_take


def _simulate(rate: float, burst_s: float, group: int, pollers: int, seconds: int, seed: int) -> list[int]:
    """Send times when `pollers` callers each take `group` messages, retrying at the answered wait
    plus a random wake-up delay (a busy event loop)."""
    r = ChannelRate(1, rate, burst_s)
    rng = random.Random(seed)
    tat, sent = 0, []
    wake = [10 * US + rng.randrange(0, 1000) for _ in range(pollers)]
    end = 10 * US + seconds * US
    while min(wake) < end:
        i = wake.index(min(wake))
        now = wake[i]
        tat, wait = gcra_take(tat, now, group, r.interval_us, r.tolerance_us)
        if wait == 0:
            sent += [now] * group
            wake[i] = now + rng.randrange(0, 3000)
        else:
            wake[i] = now + wait + rng.randrange(0, 3000)
    return sorted(sent)


def _busiest(sent: list[int], window: int = US) -> int:
    j, worst = 0, 0
    for i, t in enumerate(sent):
        while sent[j] <= t - window:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def test_no_window_exceeds_rate_plus_burst_plus_one_group():
    for seed in range(3):
        sent = _simulate(985, 0.01, 4, pollers=2, seconds=5, seed=seed)
        assert _busiest(sent) <= 985 + 10 + 4


def test_a_refused_take_changes_nothing_and_says_when():
    r = ChannelRate(1, 100, 0.02)
    tat, wait = gcra_take(0, 10 * US, 5, r.interval_us, r.tolerance_us)
    assert wait == 0 and tat == 10 * US - r.tolerance_us + 5 * r.interval_us
    tat2, wait2 = gcra_take(tat, 10 * US, 5, r.interval_us, r.tolerance_us)
    assert tat2 == tat and wait2 == tat - 10 * US


def test_late_callers_waste_nothing():
    # Callers that wake up late still get the full rate over time (nothing was reserved for them).
    sent = _simulate(500, 0.01, 2, pollers=2, seconds=4, seed=7)
    assert len(sent) >= 500 * 4 * 0.95

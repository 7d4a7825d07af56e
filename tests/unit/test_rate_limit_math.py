"""The GCRA reservation arithmetic the Redis script implements (integer microseconds)."""

from app.services.sending.rate_limit import US, ChannelRate, gcra_reserve


def simulate(rate: float, burst_s: float, arrivals_us: list[int]) -> list[int]:
    """Send times for messages asking at `arrivals_us`, each sent at now + wait."""
    r = ChannelRate(1, rate, burst_s)
    tat, sent = 0, []
    for now in arrivals_us:
        tat, wait = gcra_reserve(tat, now, 1, r.interval_us, r.tolerance_us)
        sent.append(now + wait)
    return sent


def test_an_idle_channel_sends_at_once():
    r = ChannelRate(1, 200, 0.02)
    _, wait = gcra_reserve(0, 10 * US, 1, r.interval_us, r.tolerance_us)
    assert wait == 0


def test_a_crowd_is_spaced_at_the_rate_after_a_small_burst():
    sent = simulate(200, 0.02, [10 * US] * 1000)  # everyone asks at the same instant
    assert sent[:5] == [10 * US] * 5  # 20 ms of the rate (plus the current slot) may go at once
    assert sent[5] > 10 * US
    gaps = {b - a for a, b in zip(sent[4:], sent[5:])}
    assert gaps == {5000}  # then one every 5 ms


def test_no_one_second_window_exceeds_rate_plus_burst():
    import random

    rng = random.Random(3)
    arrivals = sorted(10 * US + rng.randrange(0, 5 * US) for _ in range(3000))
    sent = sorted(simulate(200, 0.02, arrivals))
    j, worst = 0, 0
    for i, t in enumerate(sent):
        while sent[j] <= t - US:
            j += 1
        worst = max(worst, i - j + 1)
    assert worst <= 200 + 5


def test_cool_down_pushes_every_reservation_past_its_end():
    r = ChannelRate(1, 100, 0.02)
    _, wait = gcra_reserve(0, 10 * US, 1, r.interval_us, r.tolerance_us, cool_until_us=11 * US)
    assert wait == US


def test_unused_capacity_is_not_banked_beyond_the_burst():
    r = ChannelRate(1, 100, 0.05)
    tat, _ = gcra_reserve(0, 10 * US, 1, r.interval_us, r.tolerance_us)
    # an hour later, only the tolerance (50 ms: 5 messages, plus the current slot) can go at once
    now = 3600 * US
    waits = []
    for _ in range(8):
        tat, wait = gcra_reserve(tat, now, 1, r.interval_us, r.tolerance_us)
        waits.append(wait)
    assert waits[:6] == [0] * 6 and waits[6] > 0

"""Login throttling: slow a password guesser down without ever locking the account's owner out (issue 13).

The old rule (5 failures lock the account for 15 minutes, from anywhere) let anyone who knows an email
(the first admin's is guessable) keep its owner out. Now failures are counted in Redis per scope and each
scope past its free allowance waits before its next attempt is even checked; the account itself is
never locked:

- per (account, client address): after PAIR_FREE failures the pair waits 1 s, 2 s, 4 s ... (at most
  MAX_DELAY_S) after each further failure. The attacker's address is slowed; the owner elsewhere is not.
- per client address (any account, unknown emails included): the same after IP_FREE failures, so one
  address cannot spread its guesses over many accounts.
- per account (any address): after ACCOUNT_FREE failures within an hour (only a distributed guess gets
  there; ASVS 2.2.1's "at most 100 failed attempts per hour per account"), attempts from unknown
  browsers wait ACCOUNT_DELAY_S after each further failure.
- a known-good device skips all three: a browser that signed in to this account before holds a device
  cookie (`v1.<user id>.<nonce>.<HMAC>`, keyed with the secret key, so it cannot be forged and needs no
  storage; OWASP's "device cookies"). A device cookie that fails DEVICE_MAX_FAILURES times within an
  hour is treated as unknown (a stolen cookie buys no free guesses).

Before any of that, plain rate limits protect the CPU (issue 13 item 2a; Argon2id is costly on purpose):
at most RATE_PER_IP login attempts a minute from one address (a known device is exempt) and RATE_GLOBAL
a second from everyone, over all web processes (`admit`). Past them an attempt is refused at once.

Attempts refused by a wait do not check the password, do not lengthen the wait and do not count against
the rate limits. The client address is
the socket's peer as Reflex reports it (a spoofed X-Forwarded-For changes nothing). Keys hold SHA-256
digests, never an email or an address. Redis answers the waits with its own key expiry (PX), so several
web processes share them without a clock of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import redis

from app.settings import get_settings

PAIR_FREE = 3
IP_FREE = 20
ACCOUNT_FREE = 100
BASE_DELAY_S = 1.0
MAX_DELAY_S = 15 * 60.0
ACCOUNT_DELAY_S = 60.0  # past ACCOUNT_FREE: at most one more guess a minute from unknown browsers
WINDOW_S = 60 * 60  # a counter is forgotten an hour after its last failure
DEVICE_MAX_FAILURES = 5
AUDIT_EVERY_S = 60  # one "throttled" audit row per scope and minute, not one per refused attempt

RATE_PER_IP = 60  # login attempts per minute from one address (a second each: no CPU to speak of)
RATE_GLOBAL = 20  # login attempts per second from everyone (a 2-core server checks ~20-40 passwords/s)

PAIR, IP, ACCOUNT, DEVICE = "pair", "ip", "account", "device"
RATE_IP, RATE_ALL = "rate-ip", "rate-all"
_PREFIX = "hubcast:login:"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def scopes(email: str, ip: str, device: str = "") -> dict[str, str]:
    """{scope: digest} of the counters one attempt touches."""
    out = {
        PAIR: _digest("pair", email, ip),
        IP: _digest("ip", ip),
        ACCOUNT: _digest("account", email),
        RATE_IP: _digest("ip", ip),
        RATE_ALL: "all",
    }
    if device:
        out[DEVICE] = _digest("device", device)
    return out


def _count_key(scope: str, digest: str) -> str:
    return f"{_PREFIX}fail:{scope}:{digest}"


def _wait_key(scope: str, digest: str) -> str:
    return f"{_PREFIX}wait:{scope}:{digest}"


def delay_after(scope: str, failures: int) -> float:
    """Seconds this scope waits after its `failures`-th failure (0: it may try again at once)."""
    if scope == PAIR:
        free = PAIR_FREE
    elif scope == IP:
        free = IP_FREE
    elif scope == ACCOUNT:
        return ACCOUNT_DELAY_S if failures > ACCOUNT_FREE else 0.0
    else:
        return 0.0
    if failures <= free:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(failures - free - 1, 30))


# --- device cookies ----------------------------------------------------------------------------------


def _device_mac(user_id: int, nonce: str) -> str:
    key = hashlib.sha256(b"hubcast-device-cookie\x00" + get_settings().secret_key.encode()).digest()
    return hmac.new(key, f"{user_id}.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def issue_device_token(user_id: int) -> str:
    nonce = secrets.token_urlsafe(12)
    return f"v1.{int(user_id)}.{nonce}.{_device_mac(int(user_id), nonce)}"


def device_user_id(token: str) -> int | None:
    """The user a device cookie was issued to, or None when it is not one of ours."""
    parts = (token or "").split(".")
    if len(token or "") > 200 or len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
        return None
    user_id = int(parts[1])
    return user_id if hmac.compare_digest(parts[3], _device_mac(user_id, parts[2])) else None


def device_is_trusted(r: redis.Redis, token: str, user_id: int | None) -> bool:
    """A device cookie issued to this very account that has not failed too often lately."""
    if user_id is None or not token or device_user_id(token) != user_id:
        return False
    failures = r.get(_count_key(DEVICE, scopes("", "", token)[DEVICE]))
    return failures is None or int(failures) < DEVICE_MAX_FAILURES


# --- rate limits ------------------------------------------------------------------------------------


def admit(r: redis.Redis, ip: str, *, trusted: bool) -> str | None:
    """Count this attempt against the rate limits; the limit it is over (RATE_IP / RATE_ALL), or None.

    Fixed windows (a minute per address, a second overall), each an INCR with an expiry: cheap enough to
    run before anything else."""
    now = time.time()
    per_ip = f"{_PREFIX}rate:ip:{_digest('ip', ip)}:{int(now // 60)}"
    overall = f"{_PREFIX}rate:all:{int(now)}"
    pipe = r.pipeline()
    pipe.incr(overall)
    pipe.expire(overall, 5)
    if not trusted:
        pipe.incr(per_ip)
        pipe.expire(per_ip, 120)
    counts = pipe.execute()
    if counts[0] > RATE_GLOBAL:
        return RATE_ALL
    if not trusted and counts[2] > RATE_PER_IP:
        return RATE_IP
    return None


# --- the throttle -----------------------------------------------------------------------------------


def waiting_scope(r: redis.Redis, email: str, ip: str, *, trusted: bool) -> str | None:
    """The scope that must still wait before this attempt may be checked, or None."""
    if trusted:
        return None
    keys = scopes(email, ip)
    names = [PAIR, IP, ACCOUNT]
    pipe = r.pipeline()
    for name in names:
        pipe.exists(_wait_key(name, keys[name]))
    for name, present in zip(names, pipe.execute(), strict=True):
        if present:
            return name
    return None


def first_refusal_this_minute(r: redis.Redis, email: str, ip: str, scope: str) -> bool:
    """True once per waiting counter and minute: only then is a throttled attempt written to the audit log
    (200 addresses guessing one account while it waits make one row a minute, not 200)."""
    return bool(r.set(f"{_PREFIX}audited:{scope}:{scopes(email, ip)[scope]}", 1, nx=True, ex=AUDIT_EVERY_S))


def note_failure(r: redis.Redis, email: str, ip: str, device: str = "") -> dict[str, float]:
    """Count a checked, wrong attempt in every scope and start the waits it earned. Returns {scope: wait s}."""
    keys = scopes(email, ip, device)
    pipe = r.pipeline()
    for name, digest in keys.items():
        pipe.incr(_count_key(name, digest))
        pipe.expire(_count_key(name, digest), WINDOW_S)
    counts = pipe.execute()[::2]
    waits = {}
    pipe = r.pipeline()
    for (name, digest), count in zip(keys.items(), counts, strict=True):
        delay = delay_after(name, int(count))
        if delay > 0:
            waits[name] = delay
            pipe.set(_wait_key(name, digest), 1, px=int(delay * 1000))
    pipe.execute()
    return waits


def note_success(r: redis.Redis, email: str, ip: str, device: str = "") -> None:
    """The owner signed in: forget this pair's and this device's failures (not the address's or the
    account's: an attacker with an account of their own must not reset their address by signing in)."""
    keys = scopes(email, ip, device)
    names = [PAIR] + ([DEVICE] if device else [])
    r.delete(*[k for n in names for k in (_count_key(n, keys[n]), _wait_key(n, keys[n]))])

"""Issue 13 item 3: nobody can lock an account's owner out by failing to sign in as them.

Crafted browser tabs on the app's real Reflex event path (tests/support/reflex_client.py). An attacker at one
address sends 50 wrong passwords for the first admin's (guessable) email; meanwhile the owner, at another
address, signs in with the right password. The attacker is slowed (most of the 50 are refused before any
password is checked), and the owner's own browser, which signed in before (its device cookie), still signs
in even from the attacker's address (a shared office NAT).
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.db import get_engine
from app.domain import permissions as perm
from app.models import AuditLog, UserSession
from state.base import AppState
from state.login import LoginState
from tests.support.hardening import record
from tests.support.reflex_client import event_name
from tests.support.stores import PASSWORD

ATTACKER_IP, OWNER_IP = "203.0.113.66", "198.51.100.20"


def _refusals() -> list[str]:
    with Session(get_engine()) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action == "auth.login", AuditLog.outcome == "refused")).all()
        return [(a.detail or {}).get("reason", "") for a in rows]


def _sessions(user_id: int) -> int:
    with Session(get_engine()) as s:
        return len(s.exec(select(UserSession).where(UserSession.user_id == user_id)).all())


def test_fifty_wrong_passwords_do_not_lock_the_owner_out(world, redis_client, reflex_backend, monkeypatch):
    from app.services.accounts import login_throttle

    # Waits start at a minute instead of a second, so "the attacker's address is still waiting" holds
    # however slowly this machine runs the scenario (the growth itself: tests/integration/test_auth.py).
    monkeypatch.setattr(login_throttle, "BASE_DELAY_S", 60.0)
    owner = world["victim"]  # the first admin
    submit = event_name(LoginState, "submit")

    async def sign_in(new_client, ip: str, password: str, device: str = "") -> tuple[bool, str]:
        client = new_client(ip=ip)
        await client.connect("", forwarded_for="127.0.0.1")  # a spoofed header must not matter
        if device:  # what the browser's device cookie would carry
            login = await client.substate(LoginState)
            if hasattr(login, "device_token"):
                login.device_token = device
        await client.send(submit, {"form": {"email": owner.email, "password": password}})
        signed_in = (await client.substate(AppState)).signed_in
        device_after = getattr(await client.substate(LoginState), "device_token", "")
        await client.close()
        return signed_in, device_after

    async def scenario(new_client):
        # The owner's usual browser signed in once before, from the office.
        _, device = await sign_in(new_client, ATTACKER_IP, PASSWORD)
        attacker = new_client(ip=ATTACKER_IP)
        await attacker.connect("", forwarded_for="10.9.8.7")
        wrong = []
        for i in range(50):
            await attacker.send(submit, {"form": {"email": owner.email, "password": f"guess-{i:02d}-wrong!"}})
            wrong.append((await attacker.substate(AppState)).signed_in)
        await attacker.close()
        from_elsewhere, _ = await sign_in(new_client, OWNER_IP, PASSWORD)
        new_browser_at_attacker_ip, _ = await sign_in(new_client, ATTACKER_IP, PASSWORD)
        known_device_at_attacker_ip, _ = await sign_in(new_client, ATTACKER_IP, PASSWORD, device=device)
        return wrong, from_elsewhere, new_browser_at_attacker_ip, known_device_at_attacker_ip, device

    before = _sessions(owner.id)
    wrong, from_elsewhere, new_browser_same_ip, known_device, device = reflex_backend(scenario)
    reasons = _refusals()
    checked = reasons.count("bad_credentials")
    sessions_made = _sessions(owner.id) - before
    ok = not any(wrong) and from_elsewhere and known_device and checked <= 10 and bool(device)
    record(
        "handlers",
        "login lock-out: 50 wrong passwords from one IP, then the owner from another IP "
        "and from a known device at the attacker's IP",
        ok=ok,
        checked=52,
        refused_correctly=50 - sum(wrong),
        allowed_correctly=int(from_elsewhere) + int(known_device),
        passwords_checked_of_50=checked,
        new_browser_at_attacker_ip_signed_in=new_browser_same_ip,
        throttled_audit_rows=reasons.count("throttled"),
        owner_sessions_created=sessions_made,
    )
    assert not any(wrong)
    assert from_elsewhere, "the owner, from another address, was locked out by someone else's wrong passwords"
    assert known_device, "the owner's known browser was refused at a shared address"
    assert not new_browser_same_ip, "an unknown browser at the attacker's address is not slowed"
    assert checked <= 10, f"{checked} of the attacker's 50 passwords were checked: not slowed"
    assert reasons.count("throttled") <= 5  # throttled attempts are aggregated, not one audit row each
    assert world["victim"].role == perm.ADMIN

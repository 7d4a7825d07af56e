"""`hubcast` as an operator runs it: a subprocess, real database, exit codes and output checked.

The error contract matters to scripts: an expected failure is one `hubcast: error:` line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from sqlmodel import Session, select

from app.db import make_engine
from app.domain.passwords import verify_password
from app.models import User
from app.settings import PROJECT_ROOT

PASSWORD = "correct horse battery staple"


@pytest.fixture()
def hubcast(database_url, tmp_path):
    """hubcast(*args, stdin=None, db=None) -> CompletedProcess, against the test database."""

    def _run(*args: str, stdin: str | None = None, db: str | None = None) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "DATABASE_URL": db or database_url,
            "HUBCAST_DATA_DIR": str(tmp_path / "data"),
            "HUBCAST_ENV": "test",
        }
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
            timeout=120,
        )

    return _run


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hubcast: error: ")
    return lines[0]


def _user(database_url: str, email: str) -> User | None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(User).where(User.email == email)).first()
    finally:
        engine.dispose()


def test_migrate_add_user_from_stdin_then_list(hubcast, database_url):
    proc = hubcast("migrate")
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout

    proc = hubcast(
        "user",
        "add",
        "Ada@Example.com",
        "--role",
        "advanced",
        "--name",
        "Ada",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "ada@example.com" in proc.stdout
    assert PASSWORD not in proc.stdout  # a password given on stdin is never echoed
    user = _user(database_url, "ada@example.com")
    # Exactly one trailing newline is stripped: the stored password is the one typed.
    assert user is not None and verify_password(user.password_hash, PASSWORD)

    proc = hubcast("user", "list")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.strip().splitlines()
    assert header.split() == ["ID", "EMAIL", "ROLE", "ACTIVE", "LAST", "LOGIN"]
    assert any(r.split()[1:] == ["ada@example.com", "advanced", "yes", "never"] for r in rows), proc.stdout


def test_migrate_creates_a_fresh_database(hubcast, tmp_path):
    fresh = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    assert hubcast("user", "list", db=fresh).returncode != 0  # no tables yet
    proc = hubcast("migrate", db=fresh)
    assert proc.returncode == 0, proc.stderr
    proc = hubcast("user", "list", db=fresh)
    assert proc.returncode == 0, proc.stderr
    assert "No users yet" in proc.stdout


def test_duplicate_email_is_one_clear_error(hubcast):
    assert (
        hubcast("user", "add", "dup@example.com", "--role", "basic", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    proc = hubcast("user", "add", "DUP@example.com", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert "already exists" in _one_error_line(proc)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("user", "add", "x@example.com", "--role", "boss"), "Role must be one of"),
        (("user", "add", "not-an-email", "--role", "basic"), "not a valid email"),
        (("user", "add", "x@example.com"), "--role"),  # argparse's own errors keep to one line too
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(hubcast, database_url, args, expected):
    assert expected in _one_error_line(hubcast(*args))
    assert _user(database_url, "x@example.com") is None


def test_short_password_from_stdin_is_refused(hubcast):
    assert "at least" in _one_error_line(
        hubcast("user", "add", "s@example.com", "--role", "basic", "--password-stdin", stdin="short\n")
    )


def test_generated_password_is_printed_once_and_works(hubcast, database_url):
    proc = hubcast("user", "add", "gen@example.com", "--role", "basic")
    assert proc.returncode == 0, proc.stderr
    found = re.findall(r"^Password \(shown only once, store it now\): (\S+)$", proc.stdout, re.MULTILINE)
    assert len(found) == 1, proc.stdout
    user = _user(database_url, "gen@example.com")
    assert user is not None and verify_password(user.password_hash, found[0])


def test_seed_demo_runs_once(hubcast):
    first = hubcast("seed-demo")
    assert first.returncode == 0, first.stderr
    assert "Demo data created" in first.stdout and "500 contacts" in first.stdout
    second = hubcast("seed-demo")
    assert second.returncode == 0, second.stderr
    assert "already present" in second.stdout


def test_unreachable_database_is_one_line(hubcast):
    # Port 1 on localhost refuses at once: no waiting on a timeout.
    proc = hubcast("user", "list", db="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert "DATABASE_URL" in _one_error_line(proc)


# A stored token or secret may begin with "-" (the demo seed's are `secrets.token_urlsafe`: about one seed
# in 32 has one): `hubcast sandbox` must still pass it to the Sandbox as a value, not read it as an option.
@pytest.mark.parametrize("prefix", ["", "-"], ids=["plain-secrets", "secrets-starting-with-a-dash"])
def test_sandbox_command_serves_the_stored_sandbox_channel(hubcast, database_url, tmp_path, prefix):
    """`hubcast sandbox` starts the simulator with the seeded channel's ids and secrets, so the app's
    real Cloud API client, configured from that channel row, talks to it over HTTP."""
    import asyncio

    import httpx

    from app.models import Channel
    from app.whatsapp.client import CloudApiClient
    from tests.support.sandbox import run_sandbox

    assert hubcast("seed-demo").returncode == 0
    engine = make_engine(database_url)
    try:
        with Session(engine) as s:
            channel = s.exec(select(Channel).where(Channel.kind == "sandbox")).one()
            channel.access_token, channel.app_secret = prefix + channel.access_token, prefix + channel.app_secret
            s.add(channel)
            s.commit()
            s.refresh(channel)
    finally:
        engine.dispose()
    with run_sandbox(tmp_path / "sandbox", database_url=database_url) as sandbox:
        channel.api_base_url = sandbox.url

        async def phone():
            async with CloudApiClient.from_channel(channel) as client:
                return await client.get_phone_number()

        assert asyncio.run(phone())["id"] == channel.phone_number_id
        wrong = httpx.get(
            f"{sandbox.url}/v23.0/{channel.phone_number_id}", headers={"Authorization": "Bearer not-the-channel-token"}
        )
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == 190


# --- hubcast user set-password (issue 13 item 8) ----------------------------------------------------


def test_set_password_from_stdin_replaces_it_and_ends_the_users_sessions(hubcast, database_url):
    from datetime import timedelta

    from app.models import UserSession
    from app.services.accounts.auth import token_hash
    from app.timeutil import utcnow

    assert (
        hubcast("user", "add", "sp@example.com", "--role", "basic", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:  # a browser signed in as this user
            user = session.exec(select(User).where(User.email == "sp@example.com")).one()
            session.add(
                UserSession(
                    token_hash=token_hash("a-browser"), user_id=user.id, expires_at=utcnow() + timedelta(hours=1)
                )
            )
            session.commit()
        new = "amber harbour quietly 7"
        proc = hubcast("user", "set-password", "SP@example.com", "--password-stdin", stdin=new + "\n")
        assert proc.returncode == 0, proc.stderr
        assert "1 session(s) ended" in proc.stdout and new not in proc.stdout
        with Session(engine) as session:
            user = session.exec(select(User).where(User.email == "sp@example.com")).one()
            assert verify_password(user.password_hash, new) and not verify_password(user.password_hash, PASSWORD)
            row = session.exec(select(UserSession).where(UserSession.user_id == user.id)).one()
            assert row.revoked_at is not None
    finally:
        engine.dispose()


def test_set_password_generates_one_refuses_common_ones_and_unknown_users(hubcast, database_url):
    assert (
        hubcast("user", "add", "sg@example.com", "--role", "basic", "--password-stdin", stdin=PASSWORD).returncode == 0
    )
    assert "most common passwords" in _one_error_line(
        hubcast("user", "set-password", "sg@example.com", "--password-stdin", stdin="123qweasdzxc\n")
    )
    assert verify_password(_user(database_url, "sg@example.com").password_hash, PASSWORD)  # unchanged
    assert "No user has the email nobody@example.com" in _one_error_line(
        hubcast("user", "set-password", "nobody@example.com")
    )
    proc = hubcast("user", "set-password", "sg@example.com")
    assert proc.returncode == 0, proc.stderr
    found = re.findall(r"^Password \(shown only once, store it now\): (\S+)$", proc.stdout, re.MULTILINE)
    assert len(found) == 1, proc.stdout
    assert verify_password(_user(database_url, "sg@example.com").password_hash, found[0])

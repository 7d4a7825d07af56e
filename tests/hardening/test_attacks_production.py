"""Issue 13, items 6 and 11: what `HUBCAST_ENV=production` refuses and what it never starts, checked the way an
operator meets it: the `hubcast` command in a subprocess, on its own data dir.

- 11: an http:// public URL (a non-loopback host) and a missing REDIS_URL stop every command with one clear line;
  a production start leaves the data dir 0700 and the SQLite file 0600.
- 6: production seeds no demo data and starts no Sandbox unless the operator asks (`--force` / `--demo`).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import PROJECT_ROOT
from tests.support.hardening import record

SECRET = "s" * 40


def _hubcast(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=180,
        # The usual umask: without the fix the files come out 0644 / 0755.
        preexec_fn=lambda: os.umask(0o022),
    )


@pytest.fixture()
def production_env(tmp_path, redis_url):
    data = tmp_path / "data"

    def _env(**overrides: str | None) -> dict[str, str]:
        env = {
            **os.environ,
            "HUBCAST_ENV": "production",
            "HUBCAST_SECRET_KEY": SECRET,
            "HUBCAST_DATA_DIR": str(data),
            "HUBCAST_ALLOW_SQLITE": "1",
            "DATABASE_URL": f"sqlite:///{data / 'hubcast.db'}",
            "REDIS_URL": redis_url,
            "HUBCAST_PUBLIC_URL": "https://hubcast.example.com",
        }
        for name in ("HUBCAST_API_URL", "HUBCAST_UPLOAD_DIR", "PORT"):
            env.pop(name, None)
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    return data, _env


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_production_refuses_http_and_a_missing_redis_and_keeps_its_files_private(production_env):
    data, env = production_env
    data.mkdir(mode=0o755)  # an operator's mkdir: world-readable until Hubcast tightens it
    data.chmod(0o755)
    refused = {
        "http:// public URL": _hubcast("migrate", env=env(HUBCAST_PUBLIC_URL="http://hubcast.example.com")),
        "http:// API URL": _hubcast("migrate", env=env(HUBCAST_API_URL="http://api.hubcast.example.com")),
        "no REDIS_URL": _hubcast("migrate", env=env(REDIS_URL=None)),
    }
    said = {name: proc.stderr.strip() for name, proc in refused.items()}
    db_after_refusals = (data / "hubcast.db").exists()
    accepted = _hubcast("migrate", env=env())
    # What a colleague on the same box could read: the data dir, the database, its WAL.
    modes = {p.name: _mode(p) for p in [data, *sorted(data.glob("hubcast.db*"))]}
    ok = (
        all(p.returncode == 1 for p in refused.values())
        and "HUBCAST_PUBLIC_URL" in said["http:// public URL"]
        and "https" in said["http:// public URL"]
        and "HUBCAST_API_URL" in said["http:// API URL"]
        and "REDIS_URL" in said["no REDIS_URL"]
        and not db_after_refusals
        and accepted.returncode == 0
        and modes.get("data") == "0o700"
        and modes.get("hubcast.db") == "0o600"
        and all(m == "0o600" for n, m in modes.items() if n != "data")
    )
    record(
        "handlers",
        "production with an http:// URL or no REDIS_URL; data dir and SQLite file modes",
        ok=ok,
        checked=4,
        refused_correctly=sum(p.returncode == 1 for p in refused.values()),
        allowed_correctly=int(accepted.returncode == 0),
        modes=modes,
        said=said["http:// public URL"][:160],
    )
    for name, proc in refused.items():
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("hubcast: error: "), proc.stderr
    assert "HUBCAST_PUBLIC_URL must be an https:// URL" in said["http:// public URL"]
    assert "HUBCAST_API_URL must be an https:// URL" in said["http:// API URL"]
    assert "REDIS_URL is required" in said["no REDIS_URL"]
    assert not db_after_refusals, "a refused start must not create the database"
    assert accepted.returncode == 0, accepted.stderr
    assert modes["data"] == "0o700", modes
    assert modes["hubcast.db"] == "0o600", modes
    assert all(m == "0o600" for n, m in modes.items() if n != "data"), modes


def test_http_stays_allowed_on_a_loopback_host(production_env):
    """A proxy on the same box (tests/topology) or a trial on one machine: http://localhost is a secure context."""
    _data, env = production_env
    proc = _hubcast("migrate", env=env(HUBCAST_PUBLIC_URL="http://localhost:8080"))
    assert proc.returncode == 0, proc.stderr


def test_production_seeds_no_demo_data_and_starts_no_sandbox_unless_asked(production_env, monkeypatch):
    from sqlmodel import Session, func, select

    from app import supervisor
    from app.db import make_engine
    from app.models import Channel, Contact
    from app.settings import load_settings, reset_settings_cache

    data, env = production_env
    assert _hubcast("migrate", env=env()).returncode == 0

    def counts() -> tuple[int, int]:
        engine = make_engine(env()["DATABASE_URL"])
        try:
            with Session(engine) as s:
                return (
                    s.exec(select(func.count()).select_from(Channel)).one(),
                    s.exec(select(func.count()).select_from(Contact)).one(),
                )
        finally:
            engine.dispose()

    refused = _hubcast("seed-demo", env=env())
    after_refusal = counts()
    # `hubcast run`'s own decisions, in this process with the production environment.
    for name, value in env().items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    settings = load_settings()
    run_seeds = supervisor.demo_wanted(settings, None)
    supervisor._prepare_database(settings, run_seeds)  # what `hubcast run` does before any child
    after_run = counts()
    forced = _hubcast("seed-demo", "--force", env=env())  # asked for in so many words
    after_force = counts()
    sandbox_children = supervisor.extra_children(
        settings, env(), sandbox=supervisor.sandbox_wanted(settings, None, None)
    )
    asked_children = supervisor.extra_children(settings, env(), sandbox=supervisor.sandbox_wanted(settings, True, None))
    reset_settings_cache()
    ok = (
        refused.returncode == 1
        and after_refusal == (0, 0)
        and not run_seeds
        and after_run == (0, 0)
        and forced.returncode == 0
        and after_force[0] == 1
        and sandbox_children == []
        and [c.key for c in asked_children] == ["sandbox"]
    )
    record(
        "handlers",
        "production: demo data and the Sandbox only when asked (seed-demo, run)",
        ok=ok,
        checked=4,
        refused_correctly=int(refused.returncode == 1) + int(not run_seeds) + int(sandbox_children == []),
        allowed_correctly=int(forced.returncode == 0 and after_force[0] == 1),
        said=refused.stderr.strip()[:160],
    )
    assert refused.returncode == 1 and "production" in refused.stderr, refused.stderr
    assert after_refusal == (0, 0)
    assert run_seeds is False and after_run == (0, 0)
    assert forced.returncode == 0, forced.stderr
    assert after_force[0] == 1 and after_force[1] > 0
    assert sandbox_children == [], "production started the Sandbox without being asked"
    assert [c.key for c in asked_children] == ["sandbox"]


# The regulators' fiction ranges, written out here independently of app/services/demo_seed.py (sources there):
# NANPA 555-0100..0199 in any area code; ACMA's 30 mobiles; Ofcom's 07700 900000-900999; Arcep's 06 39 98 xx xx.
_ACMA = {
    "+61491" + n
    for n in [
        "570006",
        "570156",
        "570157",
        "570158",
        "570159",
        "570110",
        "570313",
        "570737",
        "571266",
        "571491",
        "571804",
        "572549",
        "572665",
        "572983",
        "573770",
        "573087",
        "574118",
        "574632",
        "575254",
        "575789",
        "576398",
        "576801",
        "577426",
        "577644",
        "578957",
        "578148",
        "578888",
        "579212",
        "579760",
        "579455",
    ]
}
_FICTION = re.compile(r"^(\+1[2-9]\d\d55501\d\d|\+447700900\d{3}|\+3363998\d{4})$")


def test_demo_contacts_only_have_numbers_reserved_for_fiction(tmp_path):
    import phonenumbers
    from sqlmodel import Session, select

    from app.db import make_engine
    from app.migrate import upgrade_to_head
    from app.models import ContactIdentity
    from app.services.demo_seed import seed_demo

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            seed_demo(session=session)
            session.commit()
            numbers = [
                i.address
                for i in session.exec(
                    select(ContactIdentity).where(ContactIdentity.channel_type.in_(("whatsapp", "sms")))
                ).all()
            ]
    finally:
        engine.dispose()
    real = [n for n in numbers if not (_FICTION.match(n) or n in _ACMA)]
    sendable = [n for n in numbers if phonenumbers.is_valid_number(phonenumbers.parse(n))]
    ok = not real and len(numbers) == 500 and len(sendable) >= 497
    record(
        "handlers",
        "demo contacts' phone numbers outside the ranges reserved for fiction",
        ok=ok,
        checked=len(numbers),
        refused_correctly=len(numbers) - len(real),
        allowed_correctly=len(sendable),
        outside_fiction_ranges=len(real),
        examples=real[:3],
    )
    assert not real, f"{len(real)} demo numbers are in real ranges, e.g. {real[:5]}"
    # Only the three meant to fail (Ofcom's and Arcep's numbers, which libphonenumber knows are never allocated)
    # are not valid numbers: every other demo contact can be sent to through the Sandbox.
    assert len(numbers) == 500 and len(sendable) == 497, (len(numbers), len(sendable))

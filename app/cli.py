"""`hubcast`: the operator's command line (migrate, seed-demo, user, worker, run).

Expected failures (bad input, a duplicate user, an unreachable database or Redis...) end with ONE
line on stderr, `hubcast: error: ...`, and a non-zero exit code, so scripts can rely on both;
a traceback means a bug. Heavy modules are imported inside each command: `hubcast worker` must
never load Reflex, and `hubcast --help` should answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure; the message is printed as is after `hubcast: error: `."""


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we keep to the one-line error contract."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"hubcast: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


# --- commands --------------------------------------------------------------------------------


def _cmd_migrate(_args: argparse.Namespace) -> int:
    from alembic.script import ScriptDirectory

    from app.migrate import alembic_config, upgrade_to_head

    upgrade_to_head()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    print(f"Database is up to date (revision {head}).")
    return 0


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from app.db import session_scope
    from app.migrate import upgrade_to_head
    from app.run_common import seed_summary
    from app.services.demo_seed import seed_demo
    from app.settings import get_settings

    if get_settings().is_production and not args.force:
        raise CliError(
            "HUBCAST_ENV=production: demo data (a Sandbox channel, 500 fictional contacts) is not added to a "
            "production database; pass --force if this database really is a demo."
        )

    # Migrating first (a no-op when already at head) makes this safe on a brand-new database.
    upgrade_to_head()
    with session_scope() as session:
        result = seed_demo(session=session)
    print(seed_summary(result))  # only after the commit succeeded
    return 0


def _read_password_stdin() -> str:
    data = sys.stdin.read()
    # Strip exactly one line ending (what `echo` or a here-string adds), never other whitespace,
    # which may be part of the password.
    if data.endswith("\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith("\n") else data


def _cmd_user_add(args: argparse.Namespace) -> int:
    from app.db import session_scope
    from app.services.accounts.users import create_user

    password = _read_password_stdin() if args.password_stdin else None
    with session_scope() as session:
        user, generated = create_user(
            session=session, actor=None, email=args.email, role=args.role, name=args.name or "", password=password
        )
    print(f"Created {user.role} user {user.email} (id {user.id}).")
    if generated:
        print(f"Password (shown only once, store it now): {generated}")
    return 0


def _cmd_user_set_password(args: argparse.Namespace) -> int:
    from app.db import session_scope
    from app.services.accounts.passwords import set_password_cli

    password = _read_password_stdin() if args.password_stdin else None
    with session_scope() as session:
        user, generated, ended = set_password_cli(session=session, email=args.email, password=password)
    print(f"Password of {user.email} changed; {ended} session(s) ended.")
    if generated:
        print(f"Password (shown only once, store it now): {generated}")
    return 0


def _cmd_user_list(_args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.db import session_scope
    from app.models import User

    # app.services.accounts.users.list_users needs a signed-in admin; the CLI runs with shell access to the
    # server (like create_user's actor=None), so it reads the table directly.
    with session_scope() as session:
        users = list(session.exec(select(User).order_by(User.id)).all())
    if not users:
        print("No users yet.")
        return 0
    rows = [("ID", "EMAIL", "ROLE", "ACTIVE", "LAST LOGIN")]
    rows += [
        (
            str(u.id),
            u.email,
            u.role,
            "yes" if u.is_active else "no",
            u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never",
        )
        for u in users
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _background_role(role: str) -> str:
    """Logging for a background process (`hubcast worker`, `hubcast applier`) and its Redis URL, once Redis
    answered: fail fast, with one clear line."""
    import redis

    from app.logging_setup import configure_logging
    from app.redis_conn import redis_url
    from app.settings import get_settings

    configure_logging(get_settings(), role=role)
    url = redis_url()
    redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    return url


def _cmd_worker(args: argparse.Namespace) -> int:
    from workers.queues import ALL_QUEUES
    from workers.worker import run_worker

    url = _background_role("worker")
    run_worker(url, queues=tuple(args.queues or ALL_QUEUES), burst=args.burst)
    return 0


def _cmd_applier(_args: argparse.Namespace) -> int:
    from workers.status_applier import run_status_applier

    _background_role("applier")
    run_status_applier()
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from app.db import session_scope
    from app.services.channels.sandbox_channel import sandbox_argv, sandbox_channel, write_sandbox_catalogue
    from app.settings import get_settings
    from app.whatsapp.sandbox import main as sandbox_main

    argv: list[str] = []
    with session_scope() as session:
        channel = sandbox_channel(session=session)
        if channel is not None:  # match the stored channel's ids and secrets; explicit options still win
            argv = sandbox_argv(channel, public_url=get_settings().public_url)
            if "--templates-file" not in args.sandbox_args:
                catalogue = write_sandbox_catalogue(
                    session=session, channel=channel, path=get_settings().data_dir / "sandbox" / "templates.json"
                )
                argv += ["--templates-file", str(catalogue)]
    return sandbox_main(argv + list(args.sandbox_args))


def _cmd_templates_sync(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.db import session_scope
    from app.models import Channel
    from app.services.channels.templates import TemplateError, sync_templates

    with session_scope() as session:
        query = select(Channel).order_by(Channel.name)
        if args.channel:
            query = query.where(Channel.name == args.channel)
        channels = [(c.id, c.name, c.status) for c in session.exec(query).all()]
    if args.channel and not channels:
        raise CliError(f"No channel named {args.channel}.")
    failures = []
    for channel_id, name, status in channels:
        if status == "disconnected" and not args.channel:
            print(f"{name}: disconnected, skipped.")
            continue
        try:
            with session_scope() as session:  # one transaction per channel: a failure changes nothing there
                result = sync_templates(session=session, actor=None, channel_id=channel_id)
        except TemplateError as exc:
            failures.append(str(exc))
            continue
        print(result.summary())
    if failures:
        raise CliError(" ".join(failures))
    return 0


def _cmd_build(_args: argparse.Namespace) -> int:
    from app.web import build_frontend

    out = build_frontend()
    print(f"Front end built in {out}; serve it with `hubcast web`.")
    return 0


def _cmd_web(args: argparse.Namespace) -> int:
    from app.logging_setup import configure_logging
    from app.settings import get_settings
    from app.web import serve

    settings = get_settings()
    configure_logging(settings)
    return serve(
        settings, host=args.host, port=args.port or settings.port, workers=args.workers or settings.web_workers
    )


def _cmd_run(args: argparse.Namespace) -> int:
    # One way only: the supervisor never imports this module (what both need is in app.run_common).
    from app.supervisor import run

    return run(port=args.port, demo=args.demo, sandbox=args.sandbox)


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hubcast", description="Hubcast: self-hosted WhatsApp campaigns.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "run",
        help="start everything (migrations, first admin, demo data, Redis, worker, Sandbox, "
        "web app) and restart what crashes; logs in $HUBCAST_DATA_DIR/logs",
    )
    demo = p.add_mutually_exclusive_group()
    demo.add_argument(
        "--demo",
        dest="demo",
        action="store_const",
        const=True,
        default=None,
        help="seed demo data and start the Sandbox even when HUBCAST_ENV=production (where they are off)",
    )
    demo.add_argument(
        "--no-demo", dest="demo", action="store_const", const=False, help="do not seed demo data on first run"
    )
    p.add_argument(
        "--sandbox",
        dest="sandbox",
        action="store_const",
        const=True,
        default=None,
        help="start the Sandbox simulator (default: with the demo data, so not in production)",
    )
    p.add_argument("--port", type=int, help="web port (default: $PORT or 8000)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("build", help="compile the web front end once (needs Node; the Docker image does it)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser(
        "web", help="serve the web app (websocket, HTTP routes, built front end); run several behind a proxy"
    )
    p.add_argument("--port", type=int, help="port (default: $PORT or 8000)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    p.add_argument("--workers", type=int, help="server processes (default: $HUBCAST_WEB_WORKERS or 1)")
    p.set_defaults(func=_cmd_web)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("seed-demo", help="add demo data (does nothing if already present)")
    p.add_argument("--force", action="store_true", help="also when HUBCAST_ENV=production (refused otherwise)")
    p.set_defaults(func=_cmd_seed_demo)

    p = sub.add_parser("worker", help="run a background worker (with the job scheduler)")
    p.add_argument("--burst", action="store_true", help="run queued jobs, then exit")
    p.add_argument("--queues", nargs="+", metavar="QUEUE", help="queues to work on (default: all)")
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser(
        "applier",
        help="apply received webhook statuses in a process of its own "
        "(optional: web processes apply them until one runs, and again if it stops)",
    )
    p.set_defaults(func=_cmd_applier)

    p = sub.add_parser(
        "sandbox", help="run the local WhatsApp Cloud API simulator for the Sandbox channel", add_help=False
    )
    p.add_argument(
        "sandbox_args", nargs=argparse.REMAINDER, help="options passed to the Sandbox (see `hubcast sandbox --help`)"
    )
    p.set_defaults(func=_cmd_sandbox)

    p = sub.add_parser("templates", help="message templates")
    templates_sub = p.add_subparsers(dest="templates_command", required=True, metavar="ACTION", parser_class=_Parser)
    p = templates_sub.add_parser("sync", help="fetch templates from each channel's WhatsApp Business Account")
    p.add_argument("--channel", metavar="NAME", help="only this channel (default: every channel not disconnected)")
    p.set_defaults(func=_cmd_templates_sync)

    p = sub.add_parser("user", help="manage users")
    user_sub = p.add_subparsers(dest="user_command", required=True, metavar="ACTION", parser_class=_Parser)
    p = user_sub.add_parser("add", help="create a user")
    p.add_argument("email")
    # Not argparse `choices`: the service validates roles, so the CLI and the UI say the same thing.
    p.add_argument("--role", required=True, help="admin, advanced or basic")
    p.add_argument("--name", default="", help="display name")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (otherwise one is generated and printed once)",
    )
    p.set_defaults(func=_cmd_user_add)
    p = user_sub.add_parser("set-password", help="set a user's password (ends their sessions)")
    p.add_argument("email")
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (otherwise one is generated and printed once)",
    )
    p.set_defaults(func=_cmd_user_set_password)
    p = user_sub.add_parser("list", help="list users")
    p.set_defaults(func=_cmd_user_list)
    return parser


# --- errors ----------------------------------------------------------------------------------


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def describe_error(exc: BaseException) -> str | None:
    """The one-line message for an expected error, or None for a bug (which keeps its traceback)."""
    import redis.exceptions
    import sqlalchemy.exc
    from alembic.util.exc import CommandError

    from app.domain.permissions import PermissionDenied
    from app.run_common import SupervisorError
    from app.settings import SettingsError
    from app.web import WebError

    if isinstance(exc, CliError | SettingsError | SupervisorError | CommandError | PermissionDenied | WebError):
        return _first_line(str(exc))
    if _is_user_error(exc):
        return _first_line(str(exc))
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        detail = _first_line(str(exc.orig)) if exc.orig is not None else exc.__class__.__name__
        if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.ProgrammingError) and (
            "no such table" in detail or ("relation" in detail and "does not exist" in detail)
        ):
            return f"The database is not set up ({detail}); run `hubcast migrate` first."
        # The URL may hold a password: name the setting, not its value.
        return f"Database error (check DATABASE_URL): {detail}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError):
        return f"DATABASE_URL is not usable: {_first_line(str(exc))}"
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return f"Cannot reach Redis (check REDIS_URL): {_first_line(str(exc))}"
    return None


def _is_user_error(exc: BaseException) -> bool:
    # Imported here only when needed: app.services.accounts.users pulls in the models and Argon2.
    from app.services.accounts.passwords import PasswordError
    from app.services.accounts.users import UserError

    return isinstance(exc, UserError | PasswordError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["sandbox"]:
            # Everything after `sandbox` belongs to the Sandbox's own parser (argparse's REMAINDER
            # would refuse a first option that starts with "--").
            args = argparse.Namespace(func=_cmd_sandbox, sandbox_args=argv[1:])
        else:
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed on one line)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        sys.stderr.write("hubcast: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        message = describe_error(exc)
        if message is None:
            raise
        sys.stderr.write(f"hubcast: error: {message}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

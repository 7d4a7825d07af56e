"""Sandbox settings: one dataclass, filled from defaults < environment (`HUBCAST_SANDBOX_<FIELD>`)
< command line (`--field-name`), and partly changeable at runtime through POST /_sandbox/config."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.settings import SANDBOX_ENV_PREFIX, env_with_prefix

ENV_PREFIX = SANDBOX_ENV_PREFIX
# Demo-seed numbers never end like this; the Sandbox fails these on purpose (see README of the module).
DEFAULT_FAILURE_RULES = {"0000": 131026, "0001": 131049}


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8001
    webhook_url: str = ""  # where signed webhooks go; empty: statuses are computed but not posted
    app_secret: str = "sandbox-app-secret"
    access_token: str = "sandbox-access-token"
    phone_number_id: str = "100000000000001"
    waba_id: str = "200000000000001"
    display_phone_number: str = "+1 555 010 0000"
    verified_name: str = "Hubcast Sandbox"
    mps: float = 80.0  # accepted messages per second (token bucket, burst = one second); 0: unlimited
    rate_limit_http_status: int = 400  # Meta answers 130429 with HTTP 400 (a Graph OAuthException)
    latency_ms: float = 0.0  # added to every API request, like a real round trip to Meta
    sent_delay: tuple[float, float] = (0.2, 1.0)  # seconds after acceptance
    delivered_delay: tuple[float, float] = (1.0, 3.0)  # seconds after "sent"
    read_delay: tuple[float, float] = (1.0, 5.0)  # seconds after "delivered"
    failed_delay: tuple[float, float] = (0.2, 1.0)  # seconds after acceptance, for failing numbers
    read_ratio: float = 0.6
    duplicate_ratio: float = 0.0  # share of statuses posted twice
    reorder_ratio: float = 0.0  # share of messages whose last two statuses are posted in swapped order
    failure_rules: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FAILURE_RULES))
    webhook_batch_max: int = 100  # statuses per POST at most
    webhook_batch_window_ms: float = 50.0  # wait this long after the first due status to gather more
    webhook_concurrency: int = 8
    webhook_retries: int = 4
    webhook_timeout: float = 10.0
    hang_seconds: float = 30.0  # "accept then time out": answer after this long (> the client's timeout)
    # Meta's daily messaging limit (messaging_limit.py): unique people per window (0: unlimited), and the window
    messaging_limit: int = 0
    messaging_window_s: float = 86400.0
    # Issue 12 (real WhatsApp behaviour), all changeable at runtime:
    template_errors: dict[str, int] = field(default_factory=dict)  # template name -> code every send of it gets
    held_count: int = 0  # the next N template sends answer message_status "held_for_quality_assessment" ...
    held_seconds: float = 3.0  # ... and their statuses come this much later
    throttle_code: int = 130429  # the code the rate_limit fault answers (4, 80007, 130429)
    retry_after_s: float = 0.0  # > 0: throttle answers carry `Retry-After` with this many seconds
    usage_regain_minutes: int = 0  # > 0: and `X-Business-Use-Case-Usage` with estimated_time_to_regain_access
    template_count: int = 60  # generated templates served besides the demo ones
    templates_file: str = ""  # JSON list of Meta template objects; replaces the default catalogue
    log_file: str = ""  # append-only JSONL of accepted sends
    seed: int | None = None  # fixes the randomness of delays, read ratio, duplicates, reordering

    # Fields that only make sense at startup.
    STARTUP_ONLY = ("host", "port", "template_count", "templates_file", "log_file", "seed")
    SECRETS = ("app_secret", "access_token")

    def public(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.SECRETS}
        data.update({f"{name}_set": bool(getattr(self, name)) for name in self.SECRETS})
        return data

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply runtime changes (already coerced); raises ValueError for unknown or startup-only keys."""
        known = {f.name for f in dataclasses.fields(self)}
        bad = [k for k in changes if k not in known or k in self.STARTUP_ONLY]
        if bad:
            raise ValueError(f"cannot change at runtime: {', '.join(sorted(bad))}")
        coerced = {k: coerce(k, v) for k, v in changes.items()}
        for key, value in coerced.items():
            setattr(self, key, value)


def _float_pair(value: Any) -> tuple[float, float]:
    parts = [p for p in value.split(",")] if isinstance(value, str) else list(value)
    if len(parts) == 1:
        parts = parts * 2
    low, high = (float(p) for p in parts)
    if low < 0 or high < low:
        raise ValueError(f"expected 0 <= low <= high, got {value!r}")
    return (low, high)


def _rules(value: Any) -> dict[str, int]:
    if isinstance(value, Mapping):
        return {str(k): int(v) for k, v in value.items()}
    rules: dict[str, int] = {}
    for item in str(value).split(","):
        if item.strip():
            suffix, code = item.split(":")
            rules[suffix.strip()] = int(code)
    return rules


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _ratio(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"expected a ratio between 0 and 1, got {value!r}")
    return number


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "", "none", "None") else int(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": _bool,
    "tuple[float, float]": _float_pair,
    "dict[str, int]": _rules,
    "int | None": _optional_int,
}
_RATIOS = ("read_ratio", "duplicate_ratio", "reorder_ratio")


def coerce(name: str, value: Any) -> Any:
    types = {f.name: f.type for f in dataclasses.fields(SandboxConfig)}
    if name not in types:
        raise ValueError(f"unknown setting {name!r}")
    value = _ratio(value) if name in _RATIOS else _CONVERTERS[str(types[name])](value)
    if name in ("mps", "latency_ms", "hang_seconds", "webhook_timeout", "held_seconds", "retry_after_s") and value < 0:
        raise ValueError(f"{name} must be >= 0")
    if name in ("webhook_batch_max", "webhook_concurrency") and value < 1:
        raise ValueError(f"{name} must be >= 1")
    return value


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = env_with_prefix(ENV_PREFIX) if environ is None else environ
    values = {}
    for f in dataclasses.fields(SandboxConfig):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            values[f.name] = coerce(f.name, raw)
    return values


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> SandboxConfig:
    parser = argparse.ArgumentParser(
        prog="hubcast sandbox",
        description="A local WhatsApp Cloud API simulator (messages, templates, "
        "phone number, signed status webhooks). Every option can also be set as HUBCAST_SANDBOX_<OPTION>.",
    )
    for f in dataclasses.fields(SandboxConfig):
        parser.add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, default=None, help=f"default: {_default_text(f)}"
        )
    args = parser.parse_args(argv)
    values = from_env(environ)
    for name, raw in vars(args).items():
        if raw is not None:
            try:
                values[name] = coerce(name, raw)
            except ValueError as exc:
                parser.error(f"--{name.replace('_', '-')}: {exc}")
    return SandboxConfig(**values)


def _default_text(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        return ",".join(f"{k}:{v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    if isinstance(f.default, tuple):
        return ",".join(str(v) for v in f.default)
    return repr(f.default) if f.default in ("", None) else str(f.default)

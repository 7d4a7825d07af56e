"""The time zones a campaign can be scheduled in: one list for the wizard and the All Campaigns page.

IANA names from the system's tz database ("Region/City"), without the legacy aliases (Etc/, SystemV/),
after "UTC". Pure: reading the standard library's zone list is no I/O of ours.
"""

from __future__ import annotations

from zoneinfo import available_timezones

TIMEZONES: list[str] = [
    "UTC",
    *sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))),
]
_KNOWN = frozenset(TIMEZONES)


def is_known_zone(value: object) -> bool:
    return isinstance(value, str) and value in _KNOWN

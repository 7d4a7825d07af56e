"""`contacts.channel_flags`: which channel types a contact can be reached on, as one small integer.

The database keeps the column (triggers on contact_identities, migration 0005); this module only reads it.
For each channel type there are two bits: "has a subscribed identity there" and "has an unsubscribed one":

    subscribed on    whatsapp 1, instagram 2, messenger 4, sms 8
    unsubscribed on  whatsapp 16, instagram 32, messenger 64, sms 128

A condition on the flags is written as `channel_flags IN (the values that satisfy it)` rather than with
bitwise operators: the same SQL on SQLite and PostgreSQL, served by ix_contacts_channel_flags, and the
planner estimates it from the column's statistics (it cannot see through `&`).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import false
from sqlalchemy.sql.elements import ColumnElement

from app.models import Contact

CHANNEL_BITS = {"whatsapp": 1, "instagram": 2, "messenger": 4, "sms": 8}
UNSUBSCRIBED_SHIFT = 4
ALL_FLAGS = range(256)
SUBSCRIBED_MASK = 0x0F


def subscribed_on(flags: int, channel: str) -> bool:
    return bool(flags & CHANNEL_BITS[channel])


def unsubscribed_on(flags: int, channel: str) -> bool:
    return bool(flags & (CHANNEL_BITS[channel] << UNSUBSCRIBED_SHIFT))


def has_identity_on(flags: int, channel: str) -> bool:
    return subscribed_on(flags, channel) or unsubscribed_on(flags, channel)


def subscribed_anywhere(flags: int) -> bool:
    return bool(flags & SUBSCRIBED_MASK)


def flags_where(test: Callable[[int], bool]) -> ColumnElement[bool]:
    """`Contact.channel_flags IN (...)`: the contacts whose flags pass `test` (a pure function of the flags)."""
    values = [f for f in ALL_FLAGS if test(f)]
    if not values:
        return false()
    return Contact.channel_flags.in_(values)

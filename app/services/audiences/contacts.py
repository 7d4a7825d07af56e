"""Contacts (SPEC S5): create and edit, consent per channel, and the field rules a contact follows.

(The paged, filtered search the Contacts page shows is `app.services.audiences.contact_search.contacts_page`;
the CSV import into the base is `app.services.audiences.contact_import`, which checks values with the
rules here.)

Every function takes `session` and `actor` and checks the actor's capability itself: viewing needs
`audiences:view`, any change `audiences:manage`. Errors a user can fix raise `ContactError` with a
message safe to show as is.
"""

from __future__ import annotations

import re

import phonenumbers
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from app.domain import permissions as perm
from app.domain.email_address import is_email
from app.domain.phone import normalise_phone
from app.domain.variables import CONTACT_TEXT_FIELDS
from app.models import Contact, ContactIdentity, User
from app.services.access import get_or_raise, require
from app.services.accounts import audit
from app.services.audiences.contact_search import CHANNEL_LABELS
from app.services.audiences.summary import CHANNEL_TYPES
from app.timeutil import utcnow

PHONE_CHANNELS = frozenset({"whatsapp", "sms"})  # addresses are phone numbers, stored in E.164

CONTACT_FIELDS: tuple[str, ...] = CONTACT_TEXT_FIELDS  # the one list: app.domain.variables
FIELD_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "country": "Country",
    "city": "City",
    "language": "Language",
}
FIELD_LIMITS = {"first_name": 120, "last_name": 120, "email": 254, "country": 2, "city": 120, "language": 16}
CUSTOM_VALUE_LIMIT = 500
MAX_CUSTOM_FIELDS = 50
ADDRESS_LIMIT = 255

# Custom field keys become template variables and segment fields: keep them plain identifiers.
_CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
_SOCIAL_ID = re.compile(r"^[^\s]{1,255}$")
# Column names that identify the row rather than describe the contact.
IDENTIFIER_COLUMNS = frozenset({"phone", "id", "whatsapp"})


class ContactError(ValueError):
    """Bad contact input or an impossible change. The message is safe to show."""


def _contact(session: Session, contact_id) -> Contact:
    return get_or_raise(session, Contact, contact_id, ContactError, "This contact no longer exists.")


# --- validation (shared by the form and the import) -----------------------------------------------


def custom_key(name: str) -> str:
    """'Loyalty Tier' -> 'loyalty_tier'; '' when the name cannot be a key."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return key if _CUSTOM_KEY.match(key) else ""


def _refuse_nul(label: str, text: str) -> None:
    # PostgreSQL refuses a NUL in text and jsonb alike: say so instead of failing the write.
    if "\x00" in text:
        raise ContactError(f"{label} holds a NUL character (binary data, not text); remove it.")


def clean_field(name: str, value) -> str:
    """One built-in field, trimmed and checked; raises ContactError naming the field."""
    text = str(value if value is not None else "").strip()
    label = FIELD_LABELS[name]
    _refuse_nul(label, text)
    if name == "country":
        text = text.upper()
        if text and text not in phonenumbers.SUPPORTED_REGIONS:
            raise ContactError(f"{label} must be a two-letter ISO code such as FR, GB or AU, not {text[:20]!r}.")
        return text
    if len(text) > FIELD_LIMITS[name]:
        raise ContactError(f"{label} is longer than {FIELD_LIMITS[name]} characters.")
    if name == "email" and text and not is_email(text):
        raise ContactError(f"{label} {text[:60]!r} is not an email address.")
    if name == "language" and text and not _LANGUAGE.match(text):
        raise ContactError(f"{label} must be a language code such as en, fr or pt_BR, not {text!r}.")
    return text


def clean_fields(fields: dict) -> dict[str, str]:
    if not isinstance(fields, dict):
        raise ContactError("The contact form is incomplete.")
    return {name: clean_field(name, fields.get(name, "")) for name in CONTACT_FIELDS}


def clean_custom_fields(custom) -> dict[str, str]:
    """{key: value} with plain-identifier keys; empty values are dropped (a blank cell removes nothing)."""
    if custom is None:
        return {}
    if not isinstance(custom, dict):
        raise ContactError("Custom fields must be a list of names and values.")
    out: dict[str, str] = {}
    for raw_key, raw_value in custom.items():
        value = str(raw_value if raw_value is not None else "").strip()
        if not str(raw_key).strip() and not value:
            continue
        key = custom_key(raw_key)
        if not key:
            raise ContactError(
                f"Custom field name {str(raw_key)[:40]!r} must start with a letter and use only "
                "letters, digits and underscores."
            )
        if key in CONTACT_FIELDS or key in IDENTIFIER_COLUMNS:
            raise ContactError(f"{key!r} is a built-in field; give the custom field another name.")
        _refuse_nul(f"Custom field {key!r}", value)
        if len(value) > CUSTOM_VALUE_LIMIT:
            raise ContactError(f"Custom field {key!r} is longer than {CUSTOM_VALUE_LIMIT} characters.")
        if value:
            out[key] = value
    if len(out) > MAX_CUSTOM_FIELDS:
        raise ContactError(f"A contact can have at most {MAX_CUSTOM_FIELDS} custom fields.")
    return out


def clean_address(channel_type: str, raw) -> str:
    """An identity's address: E.164 for WhatsApp and SMS, a platform id otherwise ('' when blank)."""
    if channel_type not in CHANNEL_TYPES:
        raise ContactError(f"Unknown channel {str(channel_type)[:20]!r}.")
    text = str(raw if raw is not None else "").strip()
    if not text:
        return ""
    label = CHANNEL_LABELS[channel_type]
    if channel_type in PHONE_CHANNELS:
        e164, reason = normalise_phone(text)
        if e164 is None:
            raise ContactError(f"{label} number {text[:40]!r}: {reason}.")
        return e164
    if not _SOCIAL_ID.match(text):
        raise ContactError(f"{label} id must be one word without spaces, at most {ADDRESS_LIMIT} characters.")
    return text


def clean_identities(identities: dict) -> dict[str, str]:
    if not isinstance(identities, dict):
        raise ContactError("The contact's channels are incomplete.")
    unknown = [str(k)[:20] for k in identities if k not in CHANNEL_TYPES]
    if unknown:
        raise ContactError(f"Unknown channel {unknown[0]!r}.")
    return {t: clean_address(t, identities.get(t, "")) for t in CHANNEL_TYPES}


def country_of(e164: str) -> str:
    """The ISO country of a number ('' when several share the code and the number does not say)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return ""
    return region if region and region != phonenumbers.UNKNOWN_REGION else ""


def display_name(contact: Contact) -> str:
    return f"{contact.first_name} {contact.last_name}".strip() or f"Contact #{contact.id}"


def _check_addresses_free(session: Session, contact_id: int | None, addresses: dict[str, str]) -> None:
    for channel_type, address in addresses.items():
        if not address:
            continue
        other = session.exec(
            select(Contact)
            .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
            .where(ContactIdentity.channel_type == channel_type, ContactIdentity.address == address)
        ).first()
        if other is not None and other.id != contact_id:
            raise ContactError(
                f"{CHANNEL_LABELS[channel_type]} {address} already belongs to "
                f"{display_name(other)} (contact #{other.id})."
            )


# --- create, edit, consent ---------------------------------------------------------------------


def get_contact(*, session: Session, actor: User, contact_id: int) -> dict:
    """A contact for the edit form: fields, custom fields, and one identity per channel type."""
    require(session, actor, perm.AUDIENCES_VIEW)
    contact = _contact(session, contact_id)
    idents = session.exec(
        select(ContactIdentity).where(ContactIdentity.contact_id == contact.id).order_by(ContactIdentity.id)
    ).all()
    by_type: dict[str, ContactIdentity] = {}
    for ident in idents:
        by_type.setdefault(ident.channel_type, ident)
    return {
        "id": contact.id,
        "fields": {name: getattr(contact, name) or "" for name in CONTACT_FIELDS},
        "custom_fields": dict(contact.custom_fields or {}),
        "identities": {t: (by_type[t].address if t in by_type else "") for t in CHANNEL_TYPES},
        "subscribed": {t: (by_type[t].subscribed if t in by_type else None) for t in CHANNEL_TYPES},
    }


def create_contact(
    *, session: Session, actor: User, fields: dict, custom_fields: dict | None = None, identities: dict
) -> Contact:
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    values = clean_fields(fields)
    custom = clean_custom_fields(custom_fields)
    addresses = clean_identities(identities)
    if not any(addresses.values()):
        raise ContactError("Add at least one way to reach this contact (a WhatsApp number, for example).")
    _check_addresses_free(session, None, addresses)
    if not values["country"]:
        values["country"] = (
            country_of(addresses["whatsapp"] or addresses["sms"]) if (addresses["whatsapp"] or addresses["sms"]) else ""
        )
    contact = Contact(**values, custom_fields=custom)
    session.add(contact)
    session.flush()
    for channel_type, address in addresses.items():
        if address:
            session.add(ContactIdentity(contact_id=contact.id, channel_type=channel_type, address=address))
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="contact.create",
        target_type="contact",
        target_id=contact.id,
        detail={"channels": [t for t, a in addresses.items() if a]},
    )
    return contact


def update_contact(
    *, session: Session, actor: User, contact_id: int, fields: dict, custom_fields: dict | None = None, identities: dict
) -> Contact:
    """Replace the contact's fields and custom fields; add, change or remove one identity per channel.

    A changed address keeps its subscription state; a removed one is deleted (and so leaves the audience)."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    contact = _contact(session, contact_id)
    values = clean_fields(fields)
    custom = clean_custom_fields(custom_fields)
    addresses = clean_identities(identities)
    if not any(addresses.values()):
        raise ContactError(
            "A contact needs at least one channel; remove the contact's identities one at a "
            "time only while another remains."
        )
    _check_addresses_free(session, contact.id, addresses)
    for name, value in values.items():
        setattr(contact, name, value)
    contact.custom_fields = custom
    contact.updated_at = utcnow()
    session.add(contact)
    existing = session.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id)).all()
    changed = []
    for channel_type, address in addresses.items():
        mine = [i for i in existing if i.channel_type == channel_type]
        if not address:
            for ident in mine:
                session.delete(ident)
                changed.append(f"-{channel_type}")
        elif not mine:
            session.add(ContactIdentity(contact_id=contact.id, channel_type=channel_type, address=address))
            changed.append(f"+{channel_type}")
        elif mine[0].address != address:
            mine[0].address = address
            session.add(mine[0])
            changed.append(f"~{channel_type}")
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="contact.update",
        target_type="contact",
        target_id=contact.id,
        detail={"identities": changed} if changed else {},
    )
    return contact


def set_subscription(
    *, session: Session, actor: User, contact_id: int, channel_type: str, subscribed: bool
) -> ContactIdentity:
    """Subscribe or unsubscribe a contact on one channel type; recorded in the audit log."""
    actor = require(session, actor, perm.AUDIENCES_MANAGE)
    if channel_type not in CHANNEL_TYPES:
        raise ContactError(f"Unknown channel {str(channel_type)[:20]!r}.")
    contact = _contact(session, contact_id)
    idents = session.exec(
        select(ContactIdentity).where(
            ContactIdentity.contact_id == contact.id, ContactIdentity.channel_type == channel_type
        )
    ).all()
    if not idents:
        raise ContactError(f"{display_name(contact)} has no {CHANNEL_LABELS[channel_type]} identity.")
    subscribed = bool(subscribed)
    now = utcnow()
    for ident in idents:
        if ident.subscribed != subscribed:
            ident.subscribed = subscribed
            ident.subscription_changed_at = now
            session.add(ident)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="contact.subscribe" if subscribed else "contact.unsubscribe",
        target_type="contact",
        target_id=contact.id,
        detail={"channel_type": channel_type, "addresses": [i.address for i in idents]},
    )
    return idents[0]


def countries_in_use(*, session: Session, actor: User) -> list[str]:
    """The countries contacts have, for the filter (an index scan on contacts.country)."""
    require(session, actor, perm.AUDIENCES_VIEW)
    return [
        c
        for c in session.exec(
            sa_select(Contact.country).where(Contact.country != "").distinct().order_by(Contact.country)
        )
        .scalars()
        .all()
    ]


def custom_field_keys(*, session: Session, actor: User, sample: int = 2000) -> list[str]:
    """Custom field names in use, read from the most recent contacts (a bounded read, for pickers)."""
    require(session, actor, perm.AUDIENCES_VIEW)
    keys: set[str] = set()
    rows = session.exec(sa_select(Contact.custom_fields).order_by(Contact.id.desc()).limit(sample)).scalars()
    for fields in rows:
        if isinstance(fields, dict):
            keys.update(str(k) for k in fields)
    return sorted(keys)

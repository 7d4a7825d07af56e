"""Demo data for a fresh Hubcast install.

`seed_demo(session=...)` fills an empty database with a connected Sandbox channel, Meta-shaped
templates, 500 contacts across eight countries, two lists and two segments, so someone evaluating
Hubcast can run a whole campaign against the local WhatsApp sandbox without a Meta account.

Everything is drawn from `random.Random(42)`, so two installs get the same people and numbers and
screenshots, docs and tests can rely on them. Only timestamps move with the clock.

The function never commits: the caller owns the transaction, so a failed seed leaves nothing behind.
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from sqlmodel import Session, select

from app.models import Channel, Contact, ContactIdentity, ContactList, ListMembership, Segment, Template
from app.settings import get_settings
from app.timeutil import utcnow
from app.whatsapp.sandbox.demo_templates import demo_templates

SANDBOX_NAME = "Sandbox"
CONTACT_COUNT = 500

# code: (weight, languages, first names, last names, cities). Weights make the mix uneven, as real
# audiences are; languages use Meta's template locale codes so contacts can be matched to templates.
_COUNTRIES: dict[str, tuple[int, tuple[str, ...], str, str, str]] = {
    "FR": (
        16,
        ("fr",),
        "Camille Léa Manon Chloé Inès Lucas Hugo Louis Gabriel Arthur Jules Sarah Thomas Émilie",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre Michel",
        "Paris|Lyon|Marseille|Toulouse|Nantes|Bordeaux|Lille|Strasbourg",
    ),
    "DE": (
        14,
        ("de",),
        "Lukas Leon Finn Jonas Paul Mia Emma Hannah Sophie Lea Anna Felix Marie Jan",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Wolf",
        "Berlin|Hamburg|München|Köln|Frankfurt am Main|Stuttgart|Leipzig|Düsseldorf",
    ),
    "GB": (
        14,
        ("en_GB",),
        "Oliver George Harry Jack Amelia Olivia Isla Emily Sophie Charlotte James Ella Noah",
        "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker",
        "London|Manchester|Birmingham|Leeds|Glasgow|Bristol|Edinburgh|Liverpool",
    ),
    "US": (
        16,
        ("en_US",),
        "Liam Noah Emma Olivia Ava Sophia Mason Ethan Isabella Mia Logan Madison Tyler Chloe",
        "Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Anderson Clark Lewis Young",
        "New York|Los Angeles|Chicago|Houston|Seattle|Denver|Boston|Atlanta",
    ),
    "AU": (
        10,
        ("en",),
        "Jack Oliver William Charlotte Olivia Ava Mia Lachlan Cooper Matilda Isla Ruby Harrison",
        "Smith Jones Williams Brown Wilson Taylor Nguyen Johnson Martin White Anderson Kelly Ryan",
        "Sydney|Melbourne|Brisbane|Perth|Adelaide|Hobart|Canberra|Gold Coast",
    ),
    "BR": (
        12,
        ("pt_BR",),
        "Miguel Arthur Heitor Helena Alice Laura Valentina Davi Gabriel Beatriz Júlia Pedro",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Carvalho",
        "São Paulo|Rio de Janeiro|Belo Horizonte|Salvador|Curitiba|Recife|Porto Alegre|Fortaleza",
    ),
    "IN": (
        10,
        ("en", "en", "hi"),
        "Aarav Vivaan Aditya Arjun Saanvi Ananya Diya Priya Rohan Ishaan Kavya Neha",
        "Sharma Patel Singh Kumar Gupta Reddy Iyer Nair Mehta Joshi Rao Verma Kapoor Das",
        "Mumbai|Delhi|Bengaluru|Chennai|Hyderabad|Pune|Kolkata|Ahmedabad",
    ),
    "ES": (
        8,
        ("es",),
        "Hugo Martín Lucía Sofía Mateo Martina Daniel Paula Alejandro Valeria Pablo Carmen Álvaro",
        "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Ruiz Díaz Moreno Romero",
        "Madrid|Barcelona|Valencia|Sevilla|Zaragoza|Málaga|Bilbao|Granada",
    ),
}
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
_TIERS = ("bronze",) * 6 + ("silver",) * 3 + ("gold",)
# The Sandbox fails numbers ending like this on purpose; ordinary demo contacts must never hit them.
_FAILURE_SUFFIXES = ("0000", "0001")
# Exactly these many contacts do, so a demo campaign shows failed recipients.
_DELIBERATE_FAILURES = ("0000", "0000", "0001")


def _sample_phone(rng: random.Random, region: str, taken: set[str], suffix: str = "") -> str:
    """A valid, unused E.164 mobile number in `region`, shaped like the region's example number."""
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    pattern = phonenumbers.national_significant_number(example)
    prefix = pattern[:-7]  # keep the operator prefix so numbers look local, vary the subscriber part
    for _ in range(1000):
        tail = "".join(rng.choice("0123456789") for _ in range(7 - len(suffix))) + suffix
        if not suffix and tail.endswith(_FAILURE_SUFFIXES):
            continue
        number = phonenumbers.parse(prefix + tail, region)
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        # +44 and +1 are shared with other regions (Jersey, Canada...): the country must still match.
        if (
            e164 not in taken
            and phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) == region
        ):
            taken.add(e164)
            return e164
    raise RuntimeError(f"could not generate a valid {region} mobile number")  # pragma: no cover


def _ascii(text: str) -> str:
    table = str.maketrans("áàâäãçéèêëíîïóôöõúûüñß", "aaaaaceeeeiiioooouuuns")
    return "".join(c for c in text.lower().translate(table) if c.isalnum())


def demo_template_rows(channel_id: int, now) -> list[Template]:
    """The demo templates (`app.whatsapp.sandbox.demo_templates`, the Sandbox account's own) as rows."""
    return [
        Template(
            channel_id=channel_id,
            name=t["name"],
            language=t["language"],
            category=t["category"],
            status=t["status"],
            parameter_format=t["parameter_format"],
            components=t["components"],
            external_id=t["id"],
            synced_at=now,
        )
        for t in demo_templates()
    ]


def seed_demo(*, session: Session) -> dict:
    """Fill an empty database with demo data; do nothing if the Sandbox channel already exists."""
    if session.exec(select(Channel.id).where(Channel.name == SANDBOX_NAME)).first() is not None:
        return {"seeded": False}

    rng = random.Random(42)
    now = utcnow()
    channel = Channel(
        name=SANDBOX_NAME,
        kind="sandbox",
        status="connected",
        phone_number_id="100000000000001",
        business_account_id="200000000000001",
        display_phone_number="+1 555 010 0000",
        api_base_url=get_settings().sandbox_url,
        api_version="v23.0",
        messages_per_second=80,
        last_checked_at=now,
        # The sandbox checks these like Meta would; they protect nothing beyond this install.
        access_token=secrets.token_urlsafe(48),
        app_secret=secrets.token_urlsafe(32),
        verify_token=secrets.token_urlsafe(24),
    )
    session.add(channel)
    session.flush()  # templates need the channel id
    templates = demo_template_rows(channel.id, now)
    session.add_all(templates)

    codes = list(_COUNTRIES)
    weights = [_COUNTRIES[c][0] for c in codes]
    taken_phones: set[str] = set()
    taken_emails: set[str] = set()
    contacts: list[Contact] = []
    plans: list[tuple[str, str, str]] = []  # (kind, number, suffix); identities need ids, so they wait for the flush
    failure_slots = dict(
        zip(rng.sample(range(CONTACT_COUNT), len(_DELIBERATE_FAILURES)), _DELIBERATE_FAILURES, strict=True)
    )
    for i in range(CONTACT_COUNT):
        country = codes[i] if i < len(codes) else rng.choices(codes, weights)[0]  # every country present
        _, languages, firsts, lasts, cities = _COUNTRIES[country]
        first, last = rng.choice(firsts.split()), rng.choice(lasts.split())
        local, domain = f"{_ascii(first)}.{_ascii(last)}", rng.choice(_EMAIL_DOMAINS)
        email, n = f"{local}@{domain}", 2
        while email in taken_emails:  # namesakes are common; keep emails unique like a real CRM would
            email, n = f"{local}{n}@{domain}", n + 1
        taken_emails.add(email)
        created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1439))
        signup = (created - timedelta(days=rng.randint(0, 900))).date().isoformat()
        contacts.append(
            Contact(
                first_name=first,
                last_name=last,
                email=email,
                country=country,
                city=rng.choice(cities.split("|")),
                language=rng.choice(languages),
                created_at=created,
                updated_at=created,
                custom_fields={"loyalty_tier": rng.choice(_TIERS), "signup_date": signup},
            )
        )
        suffix = failure_slots.get(i, "")
        # Deliberate failures must stay reachable on WhatsApp, or they would demonstrate nothing.
        kind = "sms" if not suffix and rng.random() < 0.03 else "whatsapp"
        plans.append((kind, _sample_phone(rng, country, taken_phones, suffix), suffix))
    session.add_all(contacts)
    session.flush()  # identities and memberships need contact ids

    # An exact 8% of opted-out WhatsApp contacts (a coin flip per contact drifts to 6% with this seed);
    # the failing numbers stay subscribed so they are actually sent to.
    eligible = [i for i, (kind, _, suffix) in enumerate(plans) if kind == "whatsapp" and not suffix]
    opted_out = set(rng.sample(eligible, round(0.08 * len(eligible))))
    identities: list[ContactIdentity] = []
    counts = {"whatsapp": 0, "sms": 0, "instagram": 0, "messenger": 0, "unsubscribed": 0}
    for index, (contact, (kind, phone, _)) in enumerate(zip(contacts, plans, strict=True)):
        subscribed = index not in opted_out
        when = contact.created_at
        identities.append(
            ContactIdentity(
                contact_id=contact.id,
                channel_type=kind,
                address=phone,
                subscribed=subscribed,
                subscription_changed_at=when,
                created_at=when,
            )
        )
        counts[kind] += 1
        counts["unsubscribed"] += not subscribed
        if rng.random() < 0.15:
            handle = f"ig_{_ascii(contact.first_name)}{_ascii(contact.last_name)[:6]}{contact.id}"
            identities.append(
                ContactIdentity(
                    contact_id=contact.id,
                    channel_type="instagram",
                    address=handle,
                    subscription_changed_at=when,
                    created_at=when,
                )
            )
            counts["instagram"] += 1
        if rng.random() < 0.10:
            # A contact id suffix keeps PSIDs unique without a retry loop.
            psid = f"psid_{rng.randint(10**11, 10**12 - 1)}{contact.id:04d}"
            identities.append(
                ContactIdentity(
                    contact_id=contact.id,
                    channel_type="messenger",
                    address=psid,
                    subscription_changed_at=when,
                    created_at=when,
                )
            )
            counts["messenger"] += 1
    session.add_all(identities)

    newsletter = ContactList(
        name="Newsletter subscribers", description="Imported from the web shop's newsletter sign-ups"
    )
    vip = ContactList(name="VIP customers", description="Hand-picked best customers")
    session.add_all([newsletter, vip])
    session.flush()
    whatsapp_ids = [c.id for c, (kind, _, _) in zip(contacts, plans, strict=True) if kind == "whatsapp"]
    failing_ids = {contacts[i].id for i in failure_slots}
    # The failing numbers join the newsletter so the obvious first demo campaign shows failures too.
    newsletter_ids = failing_ids | set(rng.sample([i for i in whatsapp_ids if i not in failing_ids], 197))
    vip_ids = rng.sample(whatsapp_ids, 40)
    memberships = [
        ListMembership(list_id=newsletter.id, contact_id=cid, source="import", added_at=now)
        for cid in sorted(newsletter_ids)
    ]
    memberships += [
        ListMembership(list_id=vip.id, contact_id=cid, source="manual", added_at=now) for cid in sorted(vip_ids)
    ]
    session.add_all(memberships)

    session.add_all(
        [
            Segment(
                name="Australian customers",
                description="Everyone whose country is Australia",
                match="all",
                rules=[{"field": "country", "op": "equals", "value": "AU"}],
            ),
            Segment(
                name="Gold tier in Europe",
                description="Gold loyalty members in France, Germany, Spain and the UK",
                match="all",
                rules=[
                    {"field": "custom.loyalty_tier", "op": "equals", "value": "gold"},
                    {"field": "country", "op": "in", "value": ["FR", "DE", "ES", "GB"]},
                ],
            ),
        ]
    )
    session.flush()
    return {
        "seeded": True,
        "channels": 1,
        "templates": len(templates),
        "contacts": len(contacts),
        "identities": len(identities),
        **counts,
        "lists": 2,
        "list_memberships": len(memberships),
        "segments": 2,
    }

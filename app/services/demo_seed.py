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

# --- phone numbers: only ranges reserved for fiction, never a real subscriber's (issue 13 item 6) ---------
# Sources (looked up 2026-12; what was and was not confirmed is said):
# - US (and all of NANP): 555-0100 to 555-0199 in every area code are reserved for fictitious use (NANPA's
#   555 line-number assignment guidelines; confirmed through secondary sources only). libphonenumber accepts
#   them as valid fixed-line-or-mobile numbers.
# - AU: ACMA, "Phone numbers for use in TV shows, films and creative works": these 30 mobile numbers (ACMA's
#   own page was not reachable here; the list matches a public copy of its table and assets/sample-audience.csv).
#   libphonenumber accepts them as valid mobiles.
# - GB: Ofcom, "Telephone numbers for drama purposes": mobiles 07700 900000 to 07700 900999 (confirmed: BBC,
#   2015, quoting Ofcom). libphonenumber calls them INVALID (it knows they are never allocated).
# - FR: Arcep's numbers for audiovisual works, mobiles 06 39 98 00 00 to 06 39 98 99 99 (NOT confirmed here:
#   only the numbering plan decisions 2018-0881 / 2022-1583 were found). libphonenumber calls them INVALID.
# - DE: the Bundesnetzagentur's "Drama Numbers" (Mitteilung 148/2021, Amtsblatt 7/2021, per teltarif.de) are
#   five 1,000-number landline blocks and 12 single mobile numbers or small ranges (e.g. 0152 28817386):
#   too few mobiles for a demo base. ES, BR, IN: no fiction range found.
# What we chose: a number Hubcast must deliver (through the Sandbox, and past every check that validates
# numbers) has to be valid, so ordinary contacts get a US 555-01XX number, or an ACMA one for the first
# Australians, whatever their country (a French customer with a +1 number is odd, a real stranger's
# number in a demo is worse). The three contacts meant to FAIL get the British and French fiction numbers:
# invalid numbers that nobody owns, ending 0000/0001 so the Sandbox's failure rules answer #131026/#131049.
_NANP_AREA_CODES = ("202", "206", "212", "213", "303", "305", "312", "404", "415", "512", "617", "702", "718", "808")
_ACMA_MOBILES = tuple(
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
)
# (country, number) of the contacts the Sandbox fails on purpose, so a demo campaign shows failed recipients.
_DELIBERATE_FAILURES = (("GB", "+447700900000"), ("FR", "+33639980000"), ("GB", "+447700900001"))
_FAILURE_SUFFIXES = ("0000", "0001")  # the Sandbox's default failure rules: ordinary numbers never end so


def is_fiction_number(e164: str) -> bool:
    """Whether `e164` is in one of the fiction ranges above (NANP 555-01XX, ACMA's list, Ofcom's and Arcep's
    drama mobiles)."""
    return (
        (len(e164) == 12 and e164.startswith("+1") and e164[5:10] == "55501")
        or e164 in _ACMA_MOBILES
        or (e164.startswith("+447700900") and len(e164) == 13)  # 07700 900000-900999
        or (e164.startswith("+3363998") and len(e164) == 12)  # 06 39 98 00 00-99 99
    )


def _sample_phone(rng: random.Random, region: str, taken: set[str]) -> str:
    """An unused, valid number from a fiction range: ACMA's list for Australians while it lasts, else
    NANP 555-01XX (see the sources above)."""
    if region == "AU":
        free = [n for n in _ACMA_MOBILES if n not in taken]
        if free:
            taken.add(free[0])
            return free[0]
    for _ in range(10_000):
        e164 = f"+1{rng.choice(_NANP_AREA_CODES)}55501{rng.randint(0, 99):02d}"
        number = phonenumbers.parse(e164)
        if e164 not in taken and phonenumbers.is_valid_number(number) and not e164.endswith(_FAILURE_SUFFIXES):
            taken.add(e164)
            return e164
    raise RuntimeError("the fiction number ranges are used up")  # pragma: no cover


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
        display_name="Hubcast Sandbox",  # what the Sandbox answers as the number's verified name
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
        failing = failure_slots.get(i)
        if failing is not None:
            country = failing[0]  # a fiction number of their own country, invalid on purpose
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
        suffix = failing[1][-4:] if failing else ""
        # Deliberate failures must stay reachable on WhatsApp, or they would demonstrate nothing.
        kind = "sms" if not suffix and rng.random() < 0.03 else "whatsapp"
        phone = failing[1] if failing else _sample_phone(rng, country, taken_phones)
        plans.append((kind, phone, suffix))
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

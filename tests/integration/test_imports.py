"""Importing contacts into the base from a CSV (SPEC S5, S14): the preview writes nothing, the commit is all
or nothing, and the file rules are the campaign CSV's (separators, header, country codes, BOM, 20 MB)."""

from __future__ import annotations

import codecs

import pytest
from sqlalchemy import text
from sqlmodel import select

from app.db import get_engine
from app.domain.permissions import PermissionDenied
from app.models import AuditLog, Contact, ContactIdentity, ContactList, ListMembership
from app.services.audiences import contact_import as svc
from app.services.audiences import contacts
from app.services.audiences.contacts import ContactError
from tests.support.factories import audience_fingerprint

EXISTING = "+33612345678"


@pytest.fixture()
def base(session, make_user):
    """One advanced user and one contact already in the base, unsubscribed from WhatsApp."""
    actor = make_user("advanced")
    ada = contacts.create_contact(
        session=session,
        actor=actor,
        fields={"first_name": "Ada", "last_name": "Lovelace", "city": "Paris", "country": "FR"},
        custom_fields={"tier": "gold", "note": "keep"},
        identities={"whatsapp": EXISTING},
    )
    contacts.set_subscription(
        session=session, actor=actor, contact_id=ada.id, channel_type="whatsapp", subscribed=False
    )
    session.commit()
    return {"actor": actor, "ada": ada}


def _write(tmp_path, body: str, name: str = "contacts.csv", bom: bool = False):
    path = tmp_path / name
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + body.encode("utf-8"))
    return path


# line 1 header; 2 the known number (update); 3, 4 new; 5 no country code; 6 duplicate of 3; 7 bad email;
# 8 too few values.
SEMICOLON_FILE = (
    "phone;first_name;last_name;email;city;Loyalty Tier\n"
    "+33 6 12 34 56 78;Ada;;ada@new.example;;platinum\n"
    "+4915123456789;Anna;Müller;anna@example.com;Berlin;silver\n"
    "+5511987654321;Bruno;Silva;;São Paulo;\n"
    "0612345679;No;Code;;;\n"
    "+49 151 23456789;Anna again;;;;\n"
    "+61412345678;Bad;Email;not-an-email;;\n"
    "+61412345679;Short\n"
)


def test_preview_counts_new_updated_invalid_and_writes_nothing(session, base, tmp_path):
    path = _write(tmp_path, SEMICOLON_FILE, bom=True)
    before = audience_fingerprint(session)
    preview = svc.preview_import(session=session, actor=base["actor"], path=path)
    assert (preview.rows, preview.new, preview.updated, preview.invalid, preview.duplicates) == (7, 2, 1, 3, 1)
    assert preview.delimiter_name == "semicolon" and preview.id_column == "phone"
    assert preview.columns[0] == "phone"  # the BOM is not part of the first column's name
    assert [(r.line, r.reason) for r in preview.invalid_rows] == [
        (5, "Country code missing (start with + and the country code)"),
        (7, "Email 'not-an-email' is not an email address"),
        (8, "Row has 2 values; the header has 6"),
    ]
    assert preview.field_columns == ["first_name", "last_name", "email", "city"]
    assert preview.custom_columns == ["loyalty_tier"]
    assert audience_fingerprint(session) == before


def test_commit_upserts_by_whatsapp_number_into_a_new_list(session, base, tmp_path):
    path = _write(tmp_path, SEMICOLON_FILE, bom=True)
    result = svc.commit_import(session=session, actor=base["actor"], path=path, new_list_name="  Spring  fair ")
    assert (result.created, result.updated, result.invalid, result.duplicates) == (2, 1, 3, 1)
    assert result.list_name == "Spring fair" and result.added_to_list == 3

    session.expire_all()
    ada = session.get(Contact, base["ada"].id)
    # Non-empty cells update, blank cells keep what the base knew; custom fields merge.
    assert (ada.first_name, ada.last_name, ada.email, ada.city) == ("Ada", "Lovelace", "ada@new.example", "Paris")
    assert ada.custom_fields == {"tier": "gold", "note": "keep", "loyalty_tier": "platinum"}
    identities = {i.address: i for i in session.exec(select(ContactIdentity)).all()}
    assert set(identities) == {EXISTING, "+4915123456789", "+5511987654321"}
    assert identities[EXISTING].subscribed is False  # an import never re-subscribes anyone
    assert identities["+4915123456789"].subscribed is True
    anna = session.get(Contact, identities["+4915123456789"].contact_id)
    assert (anna.first_name, anna.last_name, anna.country, anna.custom_fields) == (
        "Anna",
        "Müller",
        "DE",
        {"loyalty_tier": "silver"},
    )  # the first occurrence wins; country from the number
    assert session.get(Contact, identities["+5511987654321"].contact_id).city == "São Paulo"
    members = session.exec(select(ListMembership).where(ListMembership.list_id == result.list_id)).all()
    assert sorted(m.contact_id for m in members) == sorted(i.contact_id for i in identities.values())
    assert {m.source for m in members} == {"import"}
    entry = session.exec(select(AuditLog).where(AuditLog.action == "contacts.import")).one()
    assert entry.detail["created"] == 2 and entry.detail["updated"] == 1 and entry.actor_id == base["actor"].id

    # Importing the same file again changes nobody's membership twice and creates no one.
    again = svc.commit_import(session=session, actor=base["actor"], path=path, list_id=result.list_id)
    assert (again.created, again.updated, again.added_to_list) == (0, 3, 0)


def test_comma_file_with_the_id_column_into_an_existing_list(session, base, tmp_path):
    existing = ContactList(name="VIP")
    session.add(existing)
    session.commit()
    session.add(ListMembership(list_id=existing.id, contact_id=base["ada"].id, source="manual"))
    session.commit()
    path = _write(tmp_path, "id,first_name,country\n+33612345678,Ada,\n+61412345678,Oz,AU\n")
    result = svc.commit_import(session=session, actor=base["actor"], path=path, list_id=str(existing.id))
    assert (result.created, result.updated, result.added_to_list) == (1, 1, 1)
    sources = {m.contact_id: m.source for m in session.exec(select(ListMembership)).all()}
    assert sources[base["ada"].id] == "manual"  # already a member: kept as it was
    assert sorted(sources.values()) == ["import", "manual"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("+33612345678,Ada\n+4915123456789,Anna\n", "Header row missing"),
        ("first_name,city\nAda,Paris\n", "No column named phone or id"),
        ("phone\tname\n+33612345678\tAda\n", "comma or semicolon"),
        ("phone,name\n", "no data rows"),
    ],
)
def test_refused_files_change_nothing(session, base, tmp_path, body, message):
    path = _write(tmp_path, body)
    before = audience_fingerprint(session)
    with pytest.raises(ContactError, match=message):
        svc.preview_import(session=session, actor=base["actor"], path=path)
    with pytest.raises(ContactError, match=message):
        svc.commit_import(session=session, actor=base["actor"], path=path, new_list_name="Never")
    assert audience_fingerprint(session) == before


def test_a_file_over_20_mb_is_refused(session, base, tmp_path):
    path = tmp_path / "big.csv"
    line = b"+33612345678,Some padding text to make the file large enough\n"
    with open(path, "wb") as fh:
        fh.write(b"phone,note\n")
        size = int(20.1 * 1024 * 1024)
        fh.write(line * (size // len(line) + 1))
    assert path.stat().st_size > 20.1 * 1024 * 1024
    with pytest.raises(ContactError, match=r"File is 20\.1 MB; the limit is 20 MB"):
        svc.preview_import(session=session, actor=base["actor"], path=path)


def _inject_failure_on_memberships(url: str) -> None:
    """A real database error in the last step of the commit (after contacts were inserted and updated)."""
    with get_engine().begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION hubcast_test_fail() RETURNS trigger AS $$ BEGIN "
                    "RAISE unique_violation USING MESSAGE = 'injected duplicate membership'; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER hubcast_test_fail BEFORE INSERT ON list_memberships "
                    "FOR EACH ROW EXECUTE FUNCTION hubcast_test_fail()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER hubcast_test_fail BEFORE INSERT ON list_memberships "
                    "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: injected'); END"
                )
            )


def _remove_injected_failure(url: str) -> None:
    with get_engine().begin() as conn:
        conn.execute(
            text(
                "DROP TRIGGER IF EXISTS hubcast_test_fail"
                + (" ON list_memberships" if url.startswith("postgresql") else "")
            )
        )


def test_a_commit_that_fails_midway_leaves_the_base_unchanged(session, base, tmp_path, database_url):
    path = _write(tmp_path, SEMICOLON_FILE)
    before = audience_fingerprint(session)
    _inject_failure_on_memberships(database_url)
    try:
        with pytest.raises(ContactError, match="The import failed and nothing was changed"):
            svc.commit_import(session=session, actor=base["actor"], path=path, new_list_name="Half done")
    finally:
        _remove_injected_failure(database_url)
    assert audience_fingerprint(session) == before
    assert session.exec(select(AuditLog).where(AuditLog.action == "contacts.import")).all() == []
    # The same import without the fault goes through.
    result = svc.commit_import(session=session, actor=base["actor"], path=path, new_list_name="Half done")
    assert result.created == 2


def test_a_taken_list_name_is_refused_before_anything_is_written(session, base, tmp_path):
    session.add(ContactList(name="VIP"))
    session.commit()
    before = audience_fingerprint(session)
    with pytest.raises(ContactError, match='A list named "vip" already exists'):
        svc.commit_import(
            session=session, actor=base["actor"], path=_write(tmp_path, SEMICOLON_FILE), new_list_name="vip"
        )
    assert audience_fingerprint(session) == before


def test_a_basic_user_cannot_import(session, base, make_user, tmp_path):
    basic = make_user("basic")
    path = _write(tmp_path, SEMICOLON_FILE)
    before = audience_fingerprint(session)
    with pytest.raises(PermissionDenied):
        svc.preview_import(session=session, actor=basic, path=path)
    with pytest.raises(PermissionDenied):
        svc.commit_import(session=session, actor=basic, path=path, new_list_name="Sneaky")
    assert audience_fingerprint(session) == before


def test_an_upload_is_stored_privately_and_refused_past_20_mb_while_reading(database_url, tmp_path):
    """The server copies the upload itself and stops at the limit, whatever the browser claimed."""
    import io

    from app.services.audiences import uploads
    from app.settings import get_settings

    class Endless(io.RawIOBase):
        """A client that keeps sending: 1 MiB chunks, forever."""

        def __init__(self):
            self.sent = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            self.sent += len(buffer)
            return len(buffer)

    source = Endless()
    with pytest.raises(uploads.UploadRefused, match="larger than 20 MB"):
        uploads.store_upload(source, original_name="huge.csv")
    assert source.sent <= 21 * 1024 * 1024  # stopped reading just past the limit
    folder = get_settings().upload_dir / "imports"
    assert list(folder.glob("*")) == []  # nothing half-written is left behind

    stored = uploads.store_upload(io.BytesIO(SEMICOLON_FILE.encode()), original_name="../../etc/contacts.csv")
    assert stored.path.parent == folder and stored.original_name == "contacts.csv"
    assert stored.path.name != "contacts.csv" and len(stored.path.stem) == 32  # a random name
    assert oct(stored.path.stat().st_mode & 0o777) == "0o600"
    assert uploads.owned_path(stored.path) == stored.path
    assert uploads.owned_path(tmp_path / "elsewhere.csv") is None
    uploads.discard(stored.path)
    assert not stored.path.exists()
    with pytest.raises(uploads.UploadRefused, match="not a CSV file"):
        uploads.store_upload(io.BytesIO(b"phone\n+33612345678\n"), original_name="contacts.xlsx")

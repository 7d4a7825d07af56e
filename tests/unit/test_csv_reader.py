"""The audience CSV rules (SPEC S14): what a user uploading a file is told, row by row or for the whole file."""

from pathlib import Path

import pytest

from app.services.audiences.csv_reader import (
    MAX_CSV_BYTES,
    MAX_INVALID_ROWS_KEPT,
    CsvRefused,
    check_csv,
    export_safe,
    iter_valid_rows,
)


def write(tmp_path: Path, content: str | bytes, name: str = "audience.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def refusal(path: Path, **kwargs) -> str:
    with pytest.raises(CsvRefused) as info:
        check_csv(path, **kwargs)
    return str(info.value)


def test_comma_file_is_summarised(tmp_path):
    path = write(tmp_path, "phone,first_name,city\n+61412345678,Ann,Sydney\n+442079460958,Tom,London\n")
    check = check_csv(path)
    assert check.delimiter == ","
    assert check.columns == ["phone", "first_name", "city"]
    assert check.id_column == "phone"
    assert (check.rows, check.valid, check.invalid, check.duplicates) == (2, 2, 0, 0)
    assert check.sample[0] == {"phone": "+61412345678", "first_name": "Ann", "city": "Sydney"}
    assert check.size_bytes == path.stat().st_size


def test_semicolon_file_with_bom_and_id_column(tmp_path):
    path = write(tmp_path, "\ufeffID ; Prénom\n+33 6 12 34 56 78;Zoé\n")
    check = check_csv(path)
    assert check.delimiter == ";" and check.delimiter_name == "semicolon"
    assert check.columns == ["ID", "Prénom"]  # the BOM is not part of the first column's name
    assert check.id_column == "id" and check.id_column_name == "ID"
    assert list(iter_valid_rows(path, check)) == [(2, "+33612345678", {"ID": "+33 6 12 34 56 78", "Prénom": "Zoé"})]


def test_semicolon_file_whose_values_contain_commas(tmp_path):
    path = write(tmp_path, "phone;address\n+61412345678;1 George St, Sydney\n")
    check = check_csv(path)
    assert check.delimiter == ";" and check.sample[0]["address"] == "1 George St, Sydney"


def test_tab_separated_file_is_refused(tmp_path):
    assert (
        refusal(write(tmp_path, "phone\tname\n+61412345678\tAnn\n"))
        == "Only comma or semicolon separators are supported (found tabs)"
    )


def test_file_without_header_is_refused(tmp_path):
    message = refusal(write(tmp_path, "+61412345678,Ann\n+442079460958,Tom\n"))
    assert message.startswith("Header row missing")


def test_file_without_phone_or_id_column_is_refused(tmp_path):
    message = refusal(write(tmp_path, "mobile,name\n+61412345678,Ann\n"))
    assert message == "No column named phone or id (columns found: mobile, name)"


def test_empty_file_is_refused(tmp_path):
    assert refusal(write(tmp_path, b"")) == "The file is empty"


def test_header_only_file_is_refused(tmp_path):
    assert refusal(write(tmp_path, "phone,name\n")) == "The file has a header row but no data rows"


def test_line_numbers_count_newlines_inside_quoted_values(tmp_path):
    path = write(tmp_path, 'phone,note\n+61412345678,"two\nlines"\n0412345678,x\n\n+44,short\n')
    check = check_csv(path)
    assert [(r.line, r.reason) for r in check.invalid_rows] == [
        (4, "Country code missing (start with + and the country code)"),
        (6, "Too short to be a phone number"),
    ]
    assert [line for line, _, _ in iter_valid_rows(path)] == [2]


def test_unclosed_quote_refuses_the_file_with_its_line(tmp_path):
    path = write(tmp_path, 'phone,note\n+61412345678,ok\n+442079460958,"never closed\n+33612345678,x\n')
    assert refusal(path) == "Line 3: a quote opens a value that is never closed"


def test_numbers_without_country_code_are_invalid_rows(tmp_path):
    path = write(tmp_path, "phone\n0412345678\n(02) 9374 4000\n+61412345678\n")
    check = check_csv(path)
    assert (check.rows, check.valid, check.invalid) == (3, 1, 2)
    assert {r.reason for r in check.invalid_rows} == {"Country code missing (start with + and the country code)"}
    assert [(r.line, r.value) for r in check.invalid_rows] == [(2, "0412345678"), (3, "(02) 9374 4000")]


def test_duplicates_count_once_and_the_first_row_wins(tmp_path):
    path = write(tmp_path, "phone,name\n+61412345678,First\n+61 412 345 678,Second\n0061412345678,Third\n")
    check = check_csv(path)
    assert (check.rows, check.valid, check.duplicates, check.invalid) == (3, 1, 2, 0)
    assert list(iter_valid_rows(path)) == [(2, "+61412345678", {"phone": "+61412345678", "name": "First"})]


def test_row_with_a_different_number_of_values_is_invalid(tmp_path):
    path = write(tmp_path, "phone,name\n+61412345678,Ann,extra\n+442079460958\n+33612345678,Zoé\n")
    check = check_csv(path)
    assert (check.valid, check.invalid) == (1, 2)
    assert [r.reason for r in check.invalid_rows] == [
        "Row has 3 values; the header has 2",
        "Row has 1 values; the header has 2",
    ]


def test_file_over_20_mb_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(b"phone\n")
        f.truncate(MAX_CSV_BYTES + 1)
    message = refusal(path)
    assert message == f"File is {MAX_CSV_BYTES + 1:,} bytes; the limit is 20 MB ({MAX_CSV_BYTES:,} bytes)"


def test_size_message_in_megabytes(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(b"phone\n")
        f.truncate(int(23.4 * 1024 * 1024))
    assert refusal(path) == "File is 23.4 MB; the limit is 20 MB"


def test_a_smaller_limit_can_be_given(tmp_path):
    path = write(tmp_path, "phone\n" + "+61412345678\n" * 200)  # 2,606 bytes
    assert refusal(path, max_bytes=1024) == "File is 3 KB; the limit is 1 KB"


def test_latin1_file_is_refused_with_a_clear_message(tmp_path):
    path = write(tmp_path, "phone,name\n+61412345678,Ann\n+33612345678,Zoé\n".encode("latin-1"))
    assert refusal(path) == (
        'The file is not UTF-8 text (first bad character on line 3); save it as "CSV UTF-8" and upload it again'
    )


def test_utf16_file_is_refused(tmp_path):
    path = write(tmp_path, "phone,name\n+61412345678,Ann\n".encode("utf-16"))
    assert "UTF-16" in refusal(path)


def test_invalid_rows_kept_are_capped_but_counts_stay_exact(tmp_path):
    n = MAX_INVALID_ROWS_KEPT + 5
    path = write(tmp_path, "phone\n" + "nope\n" * n + "+61412345678\n")
    check = check_csv(path)
    assert check.invalid == n and len(check.invalid_rows) == MAX_INVALID_ROWS_KEPT and check.valid == 1


def test_progress_is_reported_to_the_end(tmp_path):
    path = write(tmp_path, "phone\n" + "".join(f"+614123{i:05d}\n" for i in range(50_000)))
    seen = []
    check_csv(path, on_progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (path.stat().st_size, path.stat().st_size) and len(seen) > 1


@pytest.mark.parametrize(
    "value, safe",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+61412345678", "'+61412345678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ann", "Ann"),
        ("", ""),
        (None, ""),
        (5, "5"),
    ],
)
def test_export_safe_neutralises_spreadsheet_formulas(value, safe):
    assert export_safe(value) == safe

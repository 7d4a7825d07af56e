"""Resolving a recipient's template values from the campaign's variable mapping."""

from app.domain.variables import missing_title, placeholder_label, resolve, unmapped_keys

CONTACT = {"first_name": "Ana", "last_name": "", "city": "Lyon", "custom_fields": {"Plan": "gold", "points": 120}}


def test_fields_columns_and_text():
    mapping = {
        "body.1": {"source": "field", "key": "first_name"},
        "body.2": {"source": "column", "key": "coupon"},
        "body.3": {"source": "text", "value": "Friday"},
        "header.1": {"source": "field", "key": "custom.plan"},
    }
    r = resolve(["header.1", "body.1", "body.2", "body.3"], mapping, contact=CONTACT, row={"Coupon": "X1"})
    assert r.ok and r.values == {"header.1": "gold", "body.1": "Ana", "body.2": "X1", "body.3": "Friday"}


def test_custom_field_by_bare_name_and_numbers_become_text():
    r = resolve(["body.1"], {"body.1": {"source": "field", "key": "points"}}, contact=CONTACT)
    assert r.values == {"body.1": "120"}


def test_blank_value_uses_the_fallback():
    mapping = {"body.1": {"source": "field", "key": "last_name", "fallback": "Friend"}}
    assert resolve(["body.1"], mapping, contact=CONTACT).values == {"body.1": "Friend"}


def test_blank_without_fallback_is_missing_with_a_clear_title():
    mapping = {"body.1": {"source": "field", "key": "last_name"}, "body.2": {"source": "text", "value": "ok"}}
    r = resolve(["body.1", "body.2"], mapping, contact=CONTACT)
    assert not r.ok and r.missing == ("body.1",)
    assert r.error_title == "Missing value for {{1}}"


def test_whitespace_and_newlines_are_not_a_value():
    mapping = {"body.1": {"source": "column", "key": "name"}}
    assert resolve(["body.1"], mapping, row={"name": " \n\t "}).missing == ("body.1",)
    assert resolve(["body.1"], mapping, row={"name": "Ana\nMaria"}).values == {"body.1": "Ana Maria"}


def test_field_source_on_a_csv_row_reads_the_column_of_that_name():
    mapping = {"body.first_name": {"source": "field", "key": "first_name"}}
    assert resolve(["body.first_name"], mapping, row={"first_name": "Zoé"}).values == {"body.first_name": "Zoé"}


def test_labels_name_the_placeholder_people_see():
    assert placeholder_label("body.1") == "{{1}}"
    assert placeholder_label("body.first_name") == "{{first_name}}"
    assert placeholder_label("header.1") == "{{1}} in the header"
    assert placeholder_label("button.0.1") == "{{1}} in button 1"
    assert missing_title(["body.1", "body.3"]) == "Missing value for {{1}}, {{3}}"


def test_unmapped_keys_before_start():
    mapping = {
        "body.1": {"source": "field", "key": "first_name"},
        "body.2": {"source": "text", "value": ""},
        "body.3": {"source": "bogus"},
    }
    assert unmapped_keys(["body.1", "body.2", "body.3", "body.4"], mapping) == ["body.2", "body.3", "body.4"]

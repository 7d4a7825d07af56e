"""Phone numbers must carry their country code (SPEC S14); accepted ones come out in E.164."""

import phonenumbers
import pytest

from app.domain import phone
from app.domain.phone import normalise_phone


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("+61412345678", "+61412345678"),
        ("+61 412 345 678", "+61412345678"),
        ("0061 412 345 678", "+61412345678"),  # the "00" international prefix
        ("+1 (650) 253-0000", "+16502530000"),
        ("+33.6.12.34.56.78", "+33612345678"),
        ("  +44 20 7946 0958  ", "+442079460958"),
        ("+49-30-901820", "+4930901820"),
    ],
)
def test_numbers_with_country_code_are_normalised_to_e164(raw, e164):
    assert normalise_phone(raw) == (e164, None)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", phone.MISSING),
        ("   ", phone.MISSING),
        (None, phone.MISSING),
        ("0412345678", phone.NO_COUNTRY_CODE),
        ("412 345 678", phone.NO_COUNTRY_CODE),
        ("call me", phone.NOT_A_NUMBER),
        ("+61412345678 ext 5", phone.NOT_A_NUMBER),
        ("+6141234567891234567", phone.TOO_LONG),
        ("+12", phone.TOO_SHORT),
        ("+999 1234567", phone.UNKNOWN_COUNTRY_CODE),
        ("+61 000 000", phone.NOT_A_NUMBER),
    ],
)
def test_unusable_numbers_get_a_clear_reason(raw, reason):
    assert normalise_phone(raw) == (None, reason)


def test_every_reason_is_one_of_the_published_ones():
    for raw in ("", "abc", "0412", "+1", "+999999999", "+612345"):
        e164, reason = normalise_phone(raw)
        assert e164 is None and reason in phone.REASONS


def _library_accepts(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def test_verdicts_agree_with_phonenumbers_on_example_numbers_of_every_region():
    """The fast pre-check never rejects what phonenumbers accepts (a larger differential run is in bench/)."""
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            expected = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            assert normalise_phone(international) == (expected, None), (region, international)
            truncated = expected[:-3]  # usually too short for the region: the library decides, we agree
            assert (normalise_phone(truncated)[0] is not None) == _library_accepts(truncated), (region, truncated)


def test_fast_path_gives_the_library_verdict_on_generated_numbers():
    """A sample of bench/phone_differential.py (run it with 1,000,000 for the full check)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from phone_differential import generate

    for digits in generate(10_000, seed=11):
        assert phone._validate_digits(digits) == phone._library_verdict.__wrapped__(digits), digits


def test_national_prefix_after_country_code_is_left_to_the_library():
    # "+44 (0)20 ..." : whether the 0 is stripped is the library's call; the fast path steps aside.
    assert phone._fast_verdict("4402079460958") is None
    assert normalise_phone("+44 (0)20 7946 0958") == phone._library_verdict.__wrapped__("4402079460958")

"""normalise_phone has a shortcut for values already written "+digits" (most rows of a real file). It must
give the general path's verdict: the same value with a trailing space (which the general path strips as a
separator) takes the general path, so the two are compared on the same numbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from app.domain.phone import normalise_phone


def _numbers() -> list[str]:
    rng = random.Random(11)
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if example is None:
            continue
        digits = f"{example.country_code}{phonenumbers.national_significant_number(example)}"
        out += [
            "+" + digits,
            "+" + digits[:-2],
            "+" + digits + "12",
            "+" + digits[:-3] + "".join(rng.choice("0123456789") for _ in range(3)),
        ]
    return out


EDGE = [
    "+",
    "+0",
    "+1",
    "+12345",
    "+1234567890123456",
    "+0033612345678",
    "+33 612345678",
    "+\uff13\uff13\uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # fullwidth digits (Unicode Nd)
    "+\u0663\u0663\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits (Nd)
    "+33\u00b2612345678",  # a superscript two: a digit for isdigit(), not a decimal
    "+33612345678x",
    "++33612345678",
]


@pytest.mark.parametrize("value", _numbers() + EDGE)
def test_the_plus_digits_shortcut_gives_the_general_verdict(value):
    assert normalise_phone(value) == normalise_phone(value + " ")


def test_the_shortcut_accepts_and_refuses():
    assert normalise_phone("+33612345678") == ("+33612345678", None)
    assert normalise_phone("+33612345678")[0] == normalise_phone("0033 6 12 34 56 78")[0]
    assert normalise_phone("+1234") == (None, "Too short to be a phone number")
    assert normalise_phone("+1234567890123456") == (None, "Too long to be a phone number (at most 15 digits)")

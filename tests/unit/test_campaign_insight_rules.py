"""Pure rules behind the campaign page's insight (issue 15): the preview's sender name and initials, and the
hint shown for each class of Meta error code."""

from __future__ import annotations

import pytest

from app.domain.whatsapp_markup import business_name, profile_initials
from app.services.campaigns.insight import RESEND_LATER_CODES, failure_hint


@pytest.mark.parametrize(
    ("name", "initials"),
    [("Hubcast Sandbox", "HS"), ("acme", "A"), ("  Café   du Port  Lyon", "CD"), ("- Ünïcode shop", "ÜS"), ("", "")],
)
def test_profile_initials_are_the_first_letters_of_the_first_two_words(name, initials):
    assert profile_initials(name) == initials


def test_business_name_prefers_the_whatsapp_display_name():
    assert business_name("Hubcast  Store", "Sandbox (internal)") == "Hubcast Store"
    assert business_name("", "Sandbox") == "Sandbox"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (131026, "not on WhatsApp"),
        (131047, "Re-engagement window"),
        (132015, "paused"),
        (132016, "disabled"),
        (132000, "variables"),
        (130429, "Rate limit"),
        (131000, "send again later"),
        (131050, "unsubscribed"),
        (190, "Account problem"),
        (None, "unknown"),
        (999999, "Meta's error code reference"),
    ],
)
def test_each_code_class_gets_a_hint_saying_what_to_do(code, words):
    assert words in failure_hint(code)


def test_only_codes_worth_another_try_are_sent_again_as_retryable():
    assert {131049, 131000, 130429} <= RESEND_LATER_CODES
    assert not {131026, 131050, 132015, 131047} & RESEND_LATER_CODES

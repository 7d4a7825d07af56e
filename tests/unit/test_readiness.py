"""Campaign readiness (app/domain/readiness.py): one code per problem, the message a user reads, the stages
the wizard, the start, the schedule and the resume ask for, and resume filtering by code, not by wording."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.domain import readiness as r

READY = r.Facts(
    name="Spring sale",
    audience_chosen=True,
    audience_exists=True,
    audience_reachable=True,
    channel_name="Main",
    channel_connected=True,
    template_name="order_update",
    template_status="APPROVED",
    template_on_channel=True,
    unmapped=(),
)


def codes(facts: r.Facts, stage: str) -> list[str]:
    return [p.code for p in r.problems(facts, stage)]


@pytest.mark.parametrize("stage", r.STAGES)
def test_a_ready_campaign_has_no_problem_at_any_stage(stage):
    assert r.problems(READY, stage) == []


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"name": "  "}, r.NO_NAME, "Give the campaign a name."),
        ({"audience_chosen": False}, r.NO_AUDIENCE, "Choose the audience."),
        ({"audience_exists": False}, r.AUDIENCE_GONE, "The chosen audience no longer exists; choose another."),
        ({"audience_reachable": False}, r.AUDIENCE_EMPTY, "No one in this audience can receive WhatsApp messages."),
        ({"channel_name": None}, r.NO_CHANNEL, "Choose the WhatsApp channel to send from."),
        (
            {"channel_connected": False},
            r.CHANNEL_NOT_CONNECTED,
            "The channel “Main” is not connected; test its connection first.",
        ),
    ],
)
def test_each_setup_problem_has_its_code_and_message(change, code, message):
    facts = replace(READY, **change)
    assert r.problems(facts, r.SETUP) == [r.Problem(code, message)]
    assert r.problems(facts, r.DESIGN) == [r.Problem(code, message)]  # step 2 repeats step 1's problems


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ({"template_name": None}, r.NO_TEMPLATE, "Choose a template."),
        (
            {"template_status": "PAUSED"},
            r.TEMPLATE_NOT_APPROVED,
            "The template “order_update” is not approved by WhatsApp (status PAUSED); only approved templates can be sent.",
        ),
        (
            {"template_on_channel": False},
            r.TEMPLATE_OTHER_CHANNEL,
            "The template “order_update” belongs to another channel.",
        ),
        (
            {"unmapped": ("body.1", "header.1")},
            r.VARIABLES_UNMAPPED,
            "Say where the value of {{1}}, {{1}} in the header comes from.",
        ),
    ],
)
def test_each_design_problem_has_its_code_and_message(change, code, message):
    facts = replace(READY, **change)
    assert r.problems(facts, r.SETUP) == []  # step 1 does not talk about the message
    assert r.problems(facts, r.DESIGN) == [r.Problem(code, message)]
    assert r.problems(facts, r.SEND) == [r.Problem(code, message)]


def test_design_problems_wait_until_the_setup_is_complete_but_send_lists_everything():
    facts = replace(READY, channel_name=None, template_name=None)
    assert codes(facts, r.DESIGN) == [r.NO_CHANNEL]
    assert codes(facts, r.SEND) == [r.NO_CHANNEL, r.NO_TEMPLATE]
    everything = replace(
        READY,
        name="",
        audience_chosen=False,
        channel_connected=False,
        template_status="PENDING",
        template_on_channel=False,
        unmapped=("body.2",),
    )
    assert codes(everything, r.SEND) == [
        r.NO_NAME,
        r.NO_AUDIENCE,
        r.CHANNEL_NOT_CONNECTED,
        r.TEMPLATE_NOT_APPROVED,
        r.TEMPLATE_OTHER_CHANNEL,
        r.VARIABLES_UNMAPPED,
    ]


def test_send_does_not_judge_whether_the_audience_reaches_anyone_today():
    # A schedule may wait for an audience that fills up; the start's freeze refuses an empty one itself.
    assert r.problems(replace(READY, audience_reachable=False), r.SEND) == []
    assert codes(replace(READY, audience_exists=False), r.SEND) == [r.AUDIENCE_GONE]


def test_the_wizard_steps_map_to_stages():
    assert r.STEP_STAGES == {1: r.SETUP, 2: r.DESIGN, 3: r.DESIGN}


def test_unknown_stage_is_a_programming_error():
    with pytest.raises(ValueError):
        r.problems(READY, "later")


def test_resume_ignores_the_audience_by_code_not_by_wording():
    # The audience was frozen at start: a list emptied or a file gone since does not stop a resume.
    for change in ({"audience_chosen": False}, {"audience_exists": False}):
        assert r.for_resume(r.problems(replace(READY, **change), r.SEND)) == []
    # ...but a problem whose wording happens to mention "audience" still does (the old text filter dropped it).
    facts = replace(READY, audience_exists=False, template_name="audience_update", template_status="PAUSED")
    kept = r.for_resume(r.problems(facts, r.SEND))
    assert [p.code for p in kept] == [r.TEMPLATE_NOT_APPROVED] and "audience_update" in kept[0].message


def test_refusal_joins_the_messages():
    found = r.problems(replace(READY, channel_name=None, template_name=None), r.SEND)
    assert r.messages(found) == ["Choose the WhatsApp channel to send from.", "Choose a template."]
    assert r.refusal(found) == "Choose the WhatsApp channel to send from. Choose a template."

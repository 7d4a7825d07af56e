"""Why a campaign cannot go on yet: problem codes, the sentence a user reads for each, and the rule (pure).

One rule for every place that asks (the wizard's "Next", Send, Schedule, the scheduler's run, Resume and
the one-number trial send). `app.services.sending.readiness` reads the facts from the database and
calls `problems(facts, stage)`; callers that must ignore some problems filter them by *code*, never by
the wording (`for_resume`).

Stages:
- SETUP  (wizard step 1): a name, an audience that exists and reaches someone, a connected channel.
- DESIGN (wizard steps 2 and 3): SETUP, then (once SETUP is clean) an approved template of that channel
  with every variable mapped.
- SEND   (start, schedule, the scheduled run, resume, the trial send): everything at once, except whether
  the audience reaches anyone today: a schedule may wait for an audience that fills up, and a start
  finds out when it freezes the audience (the freeze refuses an empty one with its own message).

Where the two earlier versions (the wizard's and the sender's) disagreed, the stricter one is kept:
- channel: "connected" is `channels.is_usable` everywhere (the sender compared the status string);
- template: `template_rules.SENDABLE_STATUSES` everywhere (the sender compared with "APPROVED");
- a template of another channel is refused even when no channel is chosen (the sender skipped it then);
- the sender now also refuses a nameless campaign and an audience that no longer exists (both cheap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from app.domain.template_rules import SENDABLE_STATUSES
from app.domain.variables import placeholder_label

SETUP, DESIGN, SEND = "setup", "design", "send"
STAGES = (SETUP, DESIGN, SEND)
# Wizard step -> stage. Step 3 (review) shows the DESIGN problems; Send/Schedule re-check with SEND.
STEP_STAGES = {1: SETUP, 2: DESIGN, 3: DESIGN}

NO_NAME = "no_name"
NO_AUDIENCE = "no_audience"
AUDIENCE_GONE = "audience_gone"
AUDIENCE_EMPTY = "audience_empty"
NO_CHANNEL = "no_channel"
CHANNEL_NOT_CONNECTED = "channel_not_connected"
NO_TEMPLATE = "no_template"
TEMPLATE_NOT_APPROVED = "template_not_approved"
TEMPLATE_OTHER_CHANNEL = "template_other_channel"
TEMPLATE_UNSENDABLE = "template_unsendable"  # components Hubcast cannot fill (app.domain.template_support)
VARIABLES_UNMAPPED = "variables_unmapped"

# Who receives the campaign was decided when it started (the frozen recipient rows): a paused campaign
# resumes whatever happened to its list, segment or file since.
AUDIENCE_CODES = frozenset({NO_AUDIENCE, AUDIENCE_GONE, AUDIENCE_EMPTY})


@dataclass(frozen=True)
class Problem:
    code: str
    message: str  # shown as is


@dataclass(frozen=True)
class Facts:
    """What the rule needs to know about one campaign (read by app.services.sending.readiness)."""

    name: str = ""
    audience_chosen: bool = False  # a kind and the id of its list / segment / file
    audience_exists: bool = False
    audience_reachable: bool | None = None  # someone to send to; None when not counted (stage SEND)
    channel_name: str | None = None  # None: no channel chosen, or it was deleted
    channel_connected: bool = False
    template_name: str | None = None  # None: no template chosen, or it was deleted
    template_status: str = ""
    template_on_channel: bool = False  # the template belongs to the campaign's channel
    unmapped: tuple[str, ...] = ()  # variable keys the mapping never says how to fill
    template_unsendable: str = ""  # why Hubcast cannot fill the template's components ("" when it can)


def _setup(facts: Facts) -> list[Problem]:
    out: list[Problem] = []
    if not facts.name.strip():
        out.append(Problem(NO_NAME, "Give the campaign a name."))
    if not facts.audience_chosen:
        out.append(Problem(NO_AUDIENCE, "Choose the audience."))
    elif not facts.audience_exists:
        out.append(Problem(AUDIENCE_GONE, "The chosen audience no longer exists; choose another."))
    elif facts.audience_reachable is False:
        out.append(Problem(AUDIENCE_EMPTY, "No one in this audience can receive WhatsApp messages."))
    if facts.channel_name is None:
        out.append(Problem(NO_CHANNEL, "Choose the WhatsApp channel to send from."))
    elif not facts.channel_connected:
        out.append(
            Problem(
                CHANNEL_NOT_CONNECTED,
                f"The channel “{facts.channel_name}” is not connected; test its connection first.",
            )
        )
    return out


def _design(facts: Facts) -> list[Problem]:
    if facts.template_name is None:
        return [Problem(NO_TEMPLATE, "Choose a template.")]
    out: list[Problem] = []
    if facts.template_status not in SENDABLE_STATUSES:
        out.append(
            Problem(
                TEMPLATE_NOT_APPROVED,
                f"The template “{facts.template_name}” is not approved by WhatsApp "
                f"(status {facts.template_status}); only approved templates can be sent.",
            )
        )
    if facts.template_unsendable:
        out.append(Problem(TEMPLATE_UNSENDABLE, f"“{facts.template_name}”: {facts.template_unsendable}"))
    if not facts.template_on_channel:
        out.append(Problem(TEMPLATE_OTHER_CHANNEL, f"The template “{facts.template_name}” belongs to another channel."))
    if facts.unmapped:
        out.append(
            Problem(
                VARIABLES_UNMAPPED,
                "Say where the value of " + ", ".join(placeholder_label(k) for k in facts.unmapped) + " comes from.",
            )
        )
    return out


def problems(facts: Facts, stage: str) -> list[Problem]:
    """The problems of `facts` at `stage`, in the order the wizard lists them; empty: it may go on."""
    if stage not in STAGES:
        raise ValueError(f"unknown readiness stage {stage!r}")
    if stage == SEND:
        # Reach is never counted for SEND (see the module docstring), whatever the facts say.
        return _setup(replace(facts, audience_reachable=None)) + _design(facts)
    found = _setup(facts)
    if stage == DESIGN and not found:  # step 2 talks about the message once step 1 is complete
        found = _design(facts)
    return found


def for_resume(found: Iterable[Problem]) -> list[Problem]:
    """The problems that stop a paused campaign from resuming: all but the audience's (frozen at start)."""
    return [p for p in found if p.code not in AUDIENCE_CODES]


def messages(found: Iterable[Problem]) -> list[str]:
    return [p.message for p in found]


def refusal(found: Iterable[Problem]) -> str:
    """The problems as one sentence for an error message."""
    return " ".join(messages(found))

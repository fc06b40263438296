"""The playbook's `emails` and `sequences` are read and checked like the rest of it: every mistake
reported as FILE:LINE:COL in words marketing understands."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadrelay.adapters.playbook_file import (
    PlaybookError,
    default_playbook_text,
    parse_playbook,
)
from leadrelay.domain.automations import EnrollAction
from leadrelay.domain.nurture import Branch, SendEmail, Wait

from .test_playbook_file import SMALL

EMAILS = """\
emails:
  hello:
    subject: "Hi {{ lead.first_name | default('there') }}"
    text: "Hello"
    html: "<p>Hello {{ lead.name }}</p>"
"""


def problems(text: str) -> list[str]:
    """Each problem as LINE:COL: message, lines counted from the end of SMALL (the part under test)."""
    with pytest.raises(PlaybookError) as refused:
        parse_playbook(text, "playbook.yaml")
    offset = SMALL.count("\n")
    return [f"{p.line - offset}:{p.column}: {p.message}" for p in refused.value.problems]


def test_the_default_playbook_has_a_welcome_sequence_and_a_re_nurture_for_handed_back_leads():
    playbook = parse_playbook(default_playbook_text())
    welcome, renurture = playbook.sequences["welcome"], playbook.sequences["re_nurture"]

    assert welcome.trigger.on == "new_lead" and not welcome.reenroll
    assert [type(step).__name__ for step in welcome.steps] == ["SendEmail", "Wait", "Branch", "SendEmail", "Wait",
                                                               "SendEmail"]
    assert isinstance(welcome.steps[2], Branch) and welcome.steps[2].then == 5 and welcome.steps[2].otherwise == 3
    assert renurture.trigger.on == "hand_back" and renurture.reenroll
    assert renurture.reenroll_after == timedelta(days=30)
    assert set(playbook.email_templates) >= {"welcome", "case_study", "pricing", "check_in"}


def test_a_sequence_reads_its_trigger_steps_durations_and_branch_targets():
    playbook = parse_playbook(SMALL + EMAILS + """\
sequences:
  - id: warm_up
    trigger: stage_entered
    stage: recycled
    when: fit >= 10
    exit_when: engagement >= 80
    re_enroll: always
    steps:
      - email: hello
      - wait: 36h
      - if: last_email.opened && emails.clicked == 0
        then: again
        else: end
      - id: again
        email: hello
automations:
  - name: nurture the recycled
    trigger: stage_entered
    stage: recycled
    do:
      - enroll: warm_up
""")
    sequence = playbook.sequences["warm_up"]

    assert (sequence.trigger.on, sequence.trigger.stage, sequence.reenroll) == ("stage_entered", "recycled", True)
    assert sequence.steps[1] == Wait(timedelta(hours=36), "2")
    branch = sequence.steps[2]
    assert isinstance(branch, Branch) and (branch.then, branch.otherwise) == (3, 4)
    assert branch.when({"last_email": {"opened": True}, "emails": {"clicked": 0}})
    assert sequence.steps[3] == SendEmail("hello", "again")
    assert playbook.automations[0].actions == (EnrollAction("warm_up"),)


def test_every_mistake_in_emails_and_sequences_is_reported_where_it_is():
    found = problems(SMALL + EMAILS + """\
  broken:
    subject: "{{ lead.name "
    text: ok
sequences:
  - id: one
    trigger: stage_entered
    steps:
      - email: helo
      - wait: soon
      - if: last_email.read
        then: nowhere
  - id: two
    trigger: segment
    steps:
      - sleep: 3d
automations:
  - name: x
    trigger: hand_back
    do:
      - enroll: three
""")

    assert found == [
        ("7:14: emails.broken.subject: invalid template (line 1 of it): unexpected end of template, "
         "expected 'end of print statement'."),
        "10:5: sequences[0]: `stage` goes with trigger stage_entered, and only with it",
        ("13:16: sequences[0].steps[0].email: no email template 'helo' under `emails` "
         "(did you mean 'hello'?)"),
        "14:15: sequences[0].steps[1].wait: 'soon' is not a duration (e.g. 30m, 12h, 3d, 2w)",
        "15:13: sequences[0].steps[2].if: unknown field last_email.read in 'last_email.read'",
        ("16:15: sequences[0].steps[2].then: no step with id 'nowhere' (give a step `id: nowhere`, "
         "or use next or end)"),
        "17:5: sequences[1]: a segment sequence needs `when` (the condition that puts leads in it)",
        ("20:9: sequences[1].steps[0]: a step is exactly one of `email: TEMPLATE`, `wait: 3d` or "
         "`if: CONDITION` (with `then: STEP`)"),
        "25:17: automations[0].do[0].enroll: unknown sequence 'three'",
    ]


def test_a_loop_that_never_waits_is_refused():
    found = problems(SMALL + EMAILS + """\
sequences:
  - id: spam
    steps:
      - id: top
        email: hello
      - if: fit >= 0
        then: top
""")
    assert found == [("9:7: sequences[0].steps: steps 1, 2 make a loop without a wait "
                      "(a lead would be mailed again and again)")]

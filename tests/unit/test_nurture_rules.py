"""Nurture's rules, pure: who may get nurture mail, who may enter a sequence, how the steps are
walked, quiet hours in the lead's time zone, and the global and per-domain rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain import nurture
from leadrelay.domain.nurture import (
    Branch,
    Enrollment,
    QuietHours,
    RateLimits,
    SendBudget,
    SendEmail,
    Sequence,
    Wait,
)
from leadrelay.domain.processing import new_lead

from .builders import T0, Rule

PLAYBOOK = parse_playbook(default_playbook_text())
CLICKED = Rule(lambda c: c["last_email"]["clicked"], "last_email", source="last_email.clicked")
STEPS = (SendEmail("welcome", "1"), Wait(timedelta(days=3), "2"), Branch(CLICKED, 5, 3, "3"),
         SendEmail("case_study", "4"), Wait(timedelta(days=4), "5"), SendEmail("pricing", "6"))
WELCOME = Sequence("welcome", "Welcome", STEPS, nurture.Trigger("new_lead"))


def lead(stage: str = "lead", highest: str | None = None):  # type: ignore[no-untyped-def]
    found = new_lead("ann@acme.example", PLAYBOOK, T0)
    found.stage, found.highest_stage, found.id = stage, highest or stage, 7
    return found


# --- who gets nurture mail --------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "highest", "reason"), [
    ("lead", None, None),
    ("recycled", "sql", None),  # handed back: nurture again
    ("mql", None, "mql"),
    ("sal", None, "sales"),
    ("opportunity", None, "sales"),
    ("customer", None, "customer"),
    ("recycled", "customer", "customer"),  # a customer once is a customer: no messages meant for new leads
    ("disqualified", None, "disqualified"),
    ("lost", None, "sales"),
])
def test_nobody_in_sales_no_customer_and_no_disqualified_lead_gets_nurture_mail(stage, highest, reason):
    assert nurture.stop_reason(lead(stage, highest), PLAYBOOK) == reason


def test_a_suppressed_address_gets_no_nurture_mail_whatever_its_stage():
    assert nurture.stop_reason(lead(), PLAYBOOK, "unsubscribed") == "unsubscribed"
    assert nurture.stop_reason(lead(), PLAYBOOK, "manual") == "suppressed"


def run(status: str, enrolled: datetime, ended: datetime | None = None, kind: str = "nurture") -> Enrollment:
    return Enrollment(7, "welcome", kind, enrolled, None, status=status, ended_at=ended)


def test_a_lead_is_in_one_sequence_of_a_kind_at_a_time():
    refusal = nurture.refusal(WELCOME, lead(), PLAYBOOK, now=T0, suppressed=None, active_kinds={"nurture"}, past=[])
    assert refusal == "already in a nurture sequence (one at a time)"
    assert nurture.refusal(WELCOME, lead(), PLAYBOOK, now=T0, suppressed=None, active_kinds={"onboarding"},
                           past=[]) is None


def test_a_sequence_is_once_only_unless_it_re_enrolls_and_then_not_before_its_pause():
    past = [run("completed", T0, T0 + timedelta(days=10))]
    once = nurture.refusal(WELCOME, lead(), PLAYBOOK, now=T0 + timedelta(days=90), suppressed=None,
                           active_kinds=set(), past=past)
    assert once == "went through this sequence before (it does not re-enroll)"
    again = Sequence("welcome", "Welcome", STEPS, reenroll=True, reenroll_after=timedelta(days=30))
    refused = nurture.refusal(again, lead(), PLAYBOOK, now=T0 + timedelta(days=39), suppressed=None,
                              active_kinds=set(), past=past)
    assert refused == "left this sequence less than 30d ago"
    assert nurture.refusal(again, lead(), PLAYBOOK, now=T0 + timedelta(days=40), suppressed=None,
                           active_kinds=set(), past=past) is None


def test_a_lead_in_sales_or_suppressed_is_refused_saying_why():
    assert nurture.refusal(WELCOME, lead("sql"), PLAYBOOK, now=T0, suppressed=None, active_kinds=set(),
                           past=[]) == "gets no nurture mail (sales)"
    assert nurture.refusal(WELCOME, lead(), PLAYBOOK, now=T0, suppressed="bounced", active_kinds=set(),
                           past=[]) == "gets no nurture mail (bounced)"


# --- walking the steps -----------------------------------------------------------------------------


def test_steps_are_walked_email_wait_then_the_branch_the_reader_earned():
    assert nurture.walk(WELCOME, 0, {}, T0) == nurture.Outcome("send", 1, T0, "welcome", 0)
    assert nurture.walk(WELCOME, 1, {}, T0) == nurture.Outcome("wait", 2, T0 + timedelta(days=3))
    not_clicked = nurture.walk(WELCOME, 2, {"last_email": {"clicked": False}}, T0)
    clicked = nurture.walk(WELCOME, 2, {"last_email": {"clicked": True}}, T0)
    assert (not_clicked.template, clicked.template) == ("case_study", "pricing")
    assert nurture.walk(WELCOME, 6, {}, T0).action == "complete"


def test_after_an_email_a_wait_starts_at_once_and_the_end_completes():
    assert nurture.after_send(WELCOME, 1, T0) == nurture.Outcome("wait", 2, T0 + timedelta(days=3))
    assert nurture.after_send(WELCOME, 6, T0).action == "complete"
    assert nurture.after_send(WELCOME, 2, T0) is None  # a branch: on the next round


def test_a_loop_without_a_wait_is_found_and_one_with_a_wait_is_fine():
    always = Rule(lambda c: True, "fit", source="true")
    looping = (SendEmail("a", "1"), Branch(always, 0, 2, "2"), SendEmail("b", "3"))
    waiting = (SendEmail("a", "1"), Wait(timedelta(days=1), "2"), Branch(always, 0, 3, "3"))
    assert nurture.loops_without_wait(looping) == [0, 1]
    assert nurture.loops_without_wait(waiting) == []
    assert nurture.loops_without_wait(STEPS) == []


# --- quiet hours -----------------------------------------------------------------------------------


BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours(time(21), time(8))


@pytest.mark.parametrize(("utc", "expected"), [
    (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),  # 13:00 in Berlin: now
    (datetime(2026, 3, 2, 20, 30, tzinfo=UTC), datetime(2026, 3, 3, 7, 0, tzinfo=UTC)),  # 21:30: tomorrow 08:00
    (datetime(2026, 3, 3, 5, 0, tzinfo=UTC), datetime(2026, 3, 3, 7, 0, tzinfo=UTC)),  # 06:00: today 08:00
    (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),  # over the clock change
])
def test_quiet_hours_hold_mail_until_morning_in_the_leads_time_zone(utc, expected):
    assert NIGHT.next_allowed(utc, BERLIN) == expected


def test_quiet_hours_within_one_day_and_their_text_form():
    lunch = QuietHours.parse("12:00-13:00")
    assert lunch.next_allowed(datetime(2026, 3, 2, 12, 30, tzinfo=UTC), UTC) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert lunch.next_allowed(datetime(2026, 3, 2, 13, 0, tzinfo=UTC), UTC) == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert QuietHours.parse("") is None
    for wrong in ("21:00", "25:00-08:00", "08:00-08:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(wrong)


# --- rate limits -----------------------------------------------------------------------------------


def test_the_global_and_per_domain_limits_hold_back_what_is_over_them_until_the_next_window():
    now = datetime(2026, 3, 2, 10, 0, 42, tzinfo=UTC)
    budget = SendBudget(RateLimits(per_window=4, per_domain=2), now, sent=1, sent_by_domain={"gmail.com": 1})

    taken = [budget.take(domain) for domain in ("gmail.com", "gmail.com", "acme.example", "acme.example",
                                                "other.example")]

    assert taken == [True, False, True, True, False]  # gmail.com full at 2; then 4 in all
    assert budget.exhausted
    assert budget.next_window == datetime(2026, 3, 2, 10, 1, tzinfo=UTC)


def test_no_limit_means_every_email_may_go():
    budget = SendBudget(RateLimits(), T0)
    assert all(budget.take("gmail.com") for _ in range(10_000))

"""The playbook's `sla` section: business hours per team, sales and marketing commitments, and
SLA automations, read and checked like the rest of the file."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.business_time import BusinessHours

from .test_playbook_file import refused, where


def test_the_default_playbook_has_business_hours_per_team_and_both_teams_commitments():
    playbook = parse_playbook(default_playbook_text())
    hours = playbook.sla.calendars["emea"]

    assert isinstance(hours, BusinessHours) and hours.zone == ZoneInfo("Europe/Berlin")
    assert date(2026, 12, 25) in hours.closed_dates and date(2026, 10, 3) in hours.closed_dates
    assert [c.measure for c in playbook.sla.commitments] == ["accept", "first_touch", "attempts", "stage_time"]
    first_touch = playbook.sla.commitments[1]
    assert (first_touch.within, first_touch.business, first_touch.notify_manager, first_touch.reassign) == (
        timedelta(hours=8), True, True, True)
    assert not playbook.sla.commitments[2].business  # days are calendar days
    assert [m.kind for m in playbook.sla.marketing] == ["mql_volume", "acceptance_rate"]


def test_company_holidays_close_the_business_and_hours_follow_the_team():
    text = default_playbook_text().replace("      holidays: [DE]\n", "      holidays: [DE-BY]\n      company_holidays: [2026-12-24]\n")
    hours = parse_playbook(text).sla.calendars["emea"]

    assert date(2026, 12, 24) in hours.closed_dates and date(2026, 1, 6) in hours.closed_dates  # Epiphany in Bavaria
    friday = datetime(2026, 12, 23, 16, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert hours.add(friday, timedelta(hours=2)) == datetime(2026, 12, 28, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")) \
        + timedelta(hours=1)


def test_sla_mistakes_are_each_reported_where_they_are():
    text = (default_playbook_text()
            .replace("timezone: Europe/Berlin", "timezone: Europe/Berlín")
            .replace("holidays: [US]", "holidays: [XX]")
            .replace('hours: "09:00-18:00"', 'hours: "18:00-09:00"')
            .replace("measure: first_touch", "measure: first_tuch")
            .replace("      within_days: 14\n", "")
            .replace("    - timezone: UTC", "    - teams: [amerikas]\n      timezone: UTC"))
    problems = refused(text)
    messages = [message for _, _, message in problems]

    assert any("unknown time zone 'Europe/Berlín'" in m for m in messages)
    assert any("unknown country 'XX'" in m for m in messages)
    assert any("closes before it opens" in m for m in messages)
    assert any("sla.sales[1].measure" in m and "first_touch" in m for m in messages)
    assert any("give `within_hours` or `within_days`" in m for m in messages)
    assert any("unknown team 'amerikas' (did you mean 'americas'?)" in m for m in messages)
    line = where(text, "measure: first_tuch")[0]
    assert any(problem_line == line for problem_line, _, m in problems if "sla.sales[1].measure" in m)


def test_an_sla_automation_may_name_a_commitment_and_only_a_known_one():
    automation = """
  - name: escalate
    trigger: sla_breach
    commitment: first touch
    do:
      - webhook: sla.escalated
"""
    playbook = parse_playbook(default_playbook_text() + automation)
    assert playbook.automations[-1].commitment == "first touch"

    messages = [m for _, _, m in refused(default_playbook_text() + automation.replace("first touch", "first tuch"))]
    assert any("unknown commitment 'first tuch' (did you mean 'first touch'?)" in m for m in messages)


def test_a_marketing_commitment_is_one_kind():
    text = default_playbook_text().replace("      acceptance_rate: 0.6", "      acceptance_rate: 0.6\n      mqls: 3")
    messages = [m for _, _, m in refused(text)]

    assert any("one of `mqls`" in m for m in messages)


def test_a_commitment_can_bind_a_segment_of_leads_only():
    from leadrelay.domain.model import Lead

    text = default_playbook_text().replace("      measure: accept\n", "      measure: accept\n      when: lead.company_size >= 1000\n")
    answer = parse_playbook(text).sla.commitments[0]

    class Big:
        team, lead = "emea", Lead("a@big.example", "mql", "mql", datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")),
                                  datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")), fields={"company_size": 5000})

    class Small(Big):
        lead = Lead("a@small.example", "mql", "mql", Big.lead.created_at, Big.lead.created_at, fields={"company_size": 5})

    assert answer.binds(Big) and not answer.binds(Small)  # type: ignore[arg-type]
    messages = [m for _, _, m in refused(text.replace("lead.company_size >= 1000", "lead.company_sise >= 1000"))]
    assert any("company_sise" in m for m in messages)

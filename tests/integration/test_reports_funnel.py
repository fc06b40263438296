"""The funnel report on hand-built histories (SQLite and PostgreSQL): every figure worked out by
hand from the history in `report_histories.march` — a lead recycled and qualified again, one that
skips MQL, leads still open, a lost deal, a lead created just before midnight, an empty period,
and the time zone at the period's edges."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.funnel import FunnelGroup, funnel_report
from leadrelay.reports.periods import Period

from .report_histories import History, at, march

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), "UTC")
STAGES = ["lead", "mql", "sal", "sql", "opportunity", "customer"]


@pytest.fixture
def history(engine: Engine, playbook: Playbook) -> History:
    return march(History(engine, playbook))


def reached(group: FunnelGroup) -> dict[str, int]:
    return {stage.stage: stage.reached for stage in group.stages}


def conversions(group: FunnelGroup) -> dict[str, float | None]:
    return {stage.stage: stage.conversion for stage in group.stages}


def now_in(group: FunnelGroup) -> dict[str, int]:
    return {stage.stage: stage.now_in for stage in group.stages if stage.now_in}


def leaks(group: FunnelGroup) -> set[tuple[str, str, str | None, int]]:
    return {(leak.stage, leak.to, leak.reason, leak.count) for leak in group.leakage}


def test_leads_created_in_the_period_are_counted_by_the_highest_stage_they_reached(history: History) -> None:
    report = history.read(funnel_report, MARCH)
    total = report.total

    # a, b, c, d, e were created in March (f in February); e at 23:30 on the 31st still counts
    assert total.leads == 5
    # c skipped MQL (fast-tracked to SAL) and counts as having reached it; b was handed back and
    # qualified again, and counts once
    assert reached(total) == {"lead": 5, "mql": 3, "sal": 3, "sql": 1, "opportunity": 1, "customer": 1}
    assert conversions(total) == {"lead": None, "mql": 3 / 5, "sal": 1.0, "sql": 1 / 3, "opportunity": 1.0,
                                  "customer": 1.0}
    assert total.end_to_end == 1 / 5
    assert total.won_value == 10000
    # where they are now: d and e still leads, b accepted again, a a customer, c disqualified
    assert now_in(total) == {"lead": 2, "sal": 1, "customer": 1}
    assert total.side == {"disqualified": 1}
    assert leaks(total) == {("mql", "recycled", "bad timing", 1), ("sal", "disqualified", "not a fit", 1)}
    assert report.groups == []


def test_a_cohort_of_leads_entering_a_stage_in_the_period_starts_the_funnel_there(history: History) -> None:
    report = history.read(funnel_report, MARCH, cohort="mql")
    total = report.total

    # a (03-03), b (03-06, and again 03-15: counted once), c (skipped it on 03-09); f became an MQL in February
    assert total.leads == 3
    assert [stage.stage for stage in total.stages] == STAGES[1:]
    assert reached(total) == {"mql": 3, "sal": 3, "sql": 1, "opportunity": 1, "customer": 1}
    assert conversions(total) == {"mql": None, "sal": 1.0, "sql": 1 / 3, "opportunity": 1.0, "customer": 1.0}
    assert total.end_to_end == 1 / 3
    assert leaks(total) == {("mql", "recycled", "bad timing", 1), ("sal", "disqualified", "not a fit", 1)}

    february = history.read(funnel_report, Period(date(2026, 2, 1), date(2026, 2, 28), "UTC"), cohort="mql")
    assert february.total.leads == 1  # f
    assert reached(february.total) == {"mql": 1, "sal": 1, "sql": 1, "opportunity": 1, "customer": 0}
    assert february.total.end_to_end == 0.0
    assert leaks(february.total) == {("opportunity", "lost", "price", 1)}
    assert february.total.side == {"lost": 1}


def test_breakdowns_give_each_group_its_own_funnel(history: History) -> None:
    by_source = {g.group: g for g in history.read(funnel_report, MARCH, breakdown="source").groups}
    assert list(by_source) == ["paid search", "webinar", "(none)"]  # most leads first, then by name
    assert reached(by_source["webinar"]) == {"lead": 2, "mql": 2, "sal": 2, "sql": 1, "opportunity": 1, "customer": 1}
    assert by_source["webinar"].end_to_end == 0.5
    assert reached(by_source["paid search"]) == {"lead": 2, "mql": 1, "sal": 1, "sql": 0, "opportunity": 0,
                                                 "customer": 0}
    assert conversions(by_source["paid search"])["sql"] == 0.0
    assert leaks(by_source["paid search"]) == {("sal", "disqualified", "not a fit", 1)}
    assert reached(by_source["(none)"])["lead"] == 1 and by_source["(none)"].end_to_end == 0.0

    by_segment = {g.group: g.leads for g in history.read(funnel_report, MARCH, breakdown="segment").groups}
    assert by_segment == {"(none)": 2, "SMB": 1, "enterprise": 1, "mid-market": 1}

    by_rep = {g.group: g for g in history.read(funnel_report, MARCH, breakdown="rep").groups}
    assert {rep: g.leads for rep, g in by_rep.items()} == {
        "maya.johnson@sales.leadrelay.example": 2, "(none)": 2, "daniel.okafor@sales.leadrelay.example": 1}
    assert by_rep["maya.johnson@sales.leadrelay.example"].end_to_end == 0.5  # a won, c disqualified
    by_team = {g.group: g.leads for g in history.read(funnel_report, MARCH, breakdown="team").groups}
    assert by_team == {"americas": 3, "(none)": 2}


def test_an_empty_period_has_no_leads_and_no_rates(history: History) -> None:
    total = history.read(funnel_report, Period(date(2025, 1, 1), date(2025, 1, 31), "UTC")).total
    assert total.leads == 0
    assert reached(total) == dict.fromkeys(STAGES, 0)
    assert all(rate is None for rate in conversions(total).values())
    assert total.end_to_end is None and total.leakage == [] and total.won_value == 0


def test_the_periods_edges_are_midnights_in_the_playbooks_time_zone(engine: Engine, playbook: Playbook) -> None:
    new_york = History(engine, playbook, timezone="America/New_York")
    new_york.lead("early@firm.example", at("2026-03-01 03:00"))  # 22:00 on 28 February in New York
    new_york.lead("middle@firm.example", at("2026-03-15 12:00"))
    new_york.lead("late@firm.example", at("2026-04-01 02:00"))  # 22:00 on 31 March in New York (EDT)

    there = new_york.read(funnel_report, Period(date(2026, 3, 1), date(2026, 3, 31), "America/New_York"))
    assert there.total.leads == 2  # middle and late
    assert there.period["start"] == "2026-03-01T05:00:00+00:00" and there.period["end"] == "2026-04-01T04:00:00+00:00"
    in_utc = new_york.read(funnel_report, MARCH)
    assert in_utc.total.leads == 2  # early and middle


def test_new_history_shows_at_the_next_report_and_a_merged_lead_counts_once(history: History) -> None:
    assert history.read(funnel_report, MARCH).total.leads == 5
    history.lead("g@firm.example", at("2026-03-20 10:00"), source="webinar")
    history.hand_off("d@firm.example", at("2026-03-21 10:00"))
    report = history.read(funnel_report, MARCH)
    assert report.total.leads == 6
    assert reached(report.total)["mql"] == 4

    history.merge("g@firm.example", "d@firm.example", at("2026-03-22 10:00"))
    report = history.read(funnel_report, MARCH)
    assert report.total.leads == 5  # g is now part of d
    assert reached(report.total)["mql"] == 4


def test_a_cohort_that_is_not_a_funnel_stage_is_refused(history: History) -> None:
    with pytest.raises(InvalidInput, match="cohort: 'recycled' is neither 'created' nor a funnel stage"):
        history.read(funnel_report, MARCH, cohort="recycled")
    with pytest.raises(InvalidInput, match="breakdown: 'planet' is not one of source, medium"):
        history.read(funnel_report, MARCH, breakdown="planet")

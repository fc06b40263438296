"""The velocity report on the hand-built history of `report_histories.march` (SQLite and
PostgreSQL): time in each stage, the sales cycle, hand-off to first touch, by month, and stale
deals — every figure worked out by hand (nearest-rank percentiles: the median of 4 values is the
2nd, the 75th percentile the 3rd, the 90th the 4th)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook
from leadrelay.reports.common import Spread
from leadrelay.reports.periods import Period
from leadrelay.reports.velocity import VelocityReport, velocity_report

from .report_histories import NOW, History, at, march

DAY, HOUR = 86400.0, 3600.0
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), "UTC")
FEBRUARY_AND_MARCH = Period(date(2026, 2, 1), date(2026, 3, 31), "UTC")


@pytest.fixture
def history(engine: Engine, playbook: Playbook) -> History:
    return march(History(engine, playbook))


def spread(count: int, median: float | None, p75: float | None, p90: float | None) -> Spread:
    return Spread(count, median, p75, p90)


def in_stage(report: VelocityReport) -> dict[str, Spread]:
    return {item.stage: item.time.overall for item in report.time_in_stage}


def test_time_in_each_stage_counts_the_stays_that_ended_in_the_period(history: History) -> None:
    report = history.read(velocity_report, MARCH, NOW)

    assert in_stage(report) == {
        "lead": spread(3, DAY, DAY, DAY),  # a, b, c: one day each (f left it in February)
        "mql": spread(4, DAY, DAY, 3 * DAY),  # a 1, b 1 and again 1, f 3 (02-27 to 03-02)
        "sal": spread(3, 3 * DAY, 3 * DAY, 3 * DAY),  # a 2, c 3, f 3
        "sql": spread(2, 3 * DAY, 4 * DAY, 4 * DAY),  # f 3, a 4
        "opportunity": spread(2, 10 * DAY, 17 * DAY, 17 * DAY),  # a 10, f 17
        "recycled": spread(1, 8 * DAY, 8 * DAY, 8 * DAY),  # b, back in nurture from 03-07 to 03-15
    }
    # c skipped MQL: no stay there. Still there now: d and e (leads), b (SAL)
    assert {item.stage: item.now_in for item in report.time_in_stage} == {
        "lead": 2, "mql": 0, "sal": 1, "sql": 0, "opportunity": 0, "recycled": 0}
    assert report.months == ["2026-03"]
    assert report.time_in_stage[0].time.by_month == {"2026-03": spread(3, DAY, DAY, DAY)}


def test_the_sales_cycle_and_the_wait_for_a_first_touch(history: History) -> None:
    report = history.read(velocity_report, MARCH, NOW)

    assert report.sales_cycle.overall == spread(1, 18 * DAY, 18 * DAY, 18 * DAY)  # a: created 03-02, won 03-20
    # deals opened in March: a (called after 2 hours), b twice (never called), c (called after a day)
    assert report.mql_to_first_touch.overall == spread(2, 2 * HOUR, DAY, DAY)
    assert report.untouched == 2


def test_month_by_month_and_over_the_whole_period(history: History) -> None:
    report = history.read(velocity_report, FEBRUARY_AND_MARCH, NOW)

    assert report.months == ["2026-02", "2026-03"]
    lead = next(item for item in report.time_in_stage if item.stage == "lead").time
    assert lead.by_month == {"2026-02": spread(1, 7 * DAY, 7 * DAY, 7 * DAY),  # f: 02-20 to 02-27
                             "2026-03": spread(3, DAY, DAY, DAY)}
    assert lead.overall == spread(4, DAY, DAY, 7 * DAY)
    touch = report.mql_to_first_touch
    assert touch.by_month == {"2026-02": spread(1, 6 * HOUR, 6 * HOUR, 6 * HOUR),  # f: called 6 hours after
                              "2026-03": spread(2, 2 * HOUR, DAY, DAY)}
    assert touch.overall == spread(3, 6 * HOUR, DAY, DAY)
    assert report.sales_cycle.by_month == {"2026-03": spread(1, 18 * DAY, 18 * DAY, 18 * DAY)}


def test_deals_too_long_in_their_stage_are_stale(history: History) -> None:
    report = history.read(velocity_report, MARCH, NOW)

    # the SLA's "no idle SQLs" gives SQL 14 days; other stages the 30 days asked for
    assert report.stale_limits == {"mql": 30, "sal": 30, "sql": 14, "opportunity": 30}
    assert report.stale_counts == {"sal": 1}
    [stale] = report.stale
    assert (stale.email, stale.stage, stale.owner) == ("b@firm.example", "sal", "daniel.okafor@sales.leadrelay.example")
    assert stale.stage_entered_at == at("2026-03-16 10:00")
    assert stale.days_in_stage == 249.08  # to 2026-11-20 12:00

    assert history.read(velocity_report, MARCH, NOW, stale_days=300).stale_counts == {}


def test_per_group_times_and_an_empty_period(history: History) -> None:
    report = history.read(velocity_report, MARCH, NOW, breakdown="source")
    groups = {group.group: group for group in report.groups}
    assert set(groups) == {"event", "paid search", "webinar"}
    assert groups["webinar"].time_in_stage["mql"] == spread(3, DAY, DAY, DAY)  # a, and b twice
    assert groups["webinar"].sales_cycle == spread(1, 18 * DAY, 18 * DAY, 18 * DAY)
    assert groups["event"].time_in_stage["opportunity"] == spread(1, 17 * DAY, 17 * DAY, 17 * DAY)
    assert groups["paid search"].sales_cycle == spread(0, None, None, None)

    empty = history.read(velocity_report, Period(date(2025, 6, 1), date(2025, 6, 30), "UTC"), NOW)
    assert empty.time_in_stage == [] and empty.untouched == 0
    assert empty.sales_cycle.overall == spread(0, None, None, None) and empty.sales_cycle.by_month == {}


def test_months_follow_the_playbooks_time_zone(engine: Engine, playbook: Playbook) -> None:
    new_york = History(engine, playbook, timezone="America/New_York")
    new_york.lead("late@firm.example", at("2026-03-31 12:00"))
    new_york.hand_off("late@firm.example", at("2026-04-01 02:00"))  # 22:00 on 31 March in New York

    there = new_york.read(velocity_report, Period(date(2026, 3, 1), date(2026, 4, 30), "America/New_York"), NOW)
    lead = next(item for item in there.time_in_stage if item.stage == "lead").time
    assert lead.by_month == {"2026-03": spread(1, 14 * HOUR, 14 * HOUR, 14 * HOUR)}
    in_utc = new_york.read(velocity_report, Period(date(2026, 3, 1), date(2026, 4, 30), "UTC"), NOW)
    assert next(item for item in in_utc.time_in_stage if item.stage == "lead").time.by_month == {
        "2026-04": spread(1, 14 * HOUR, 14 * HOUR, 14 * HOUR)}

"""The sources report on a hand-built history (SQLite and PostgreSQL): leads, MQLs, SQLs, won deals
and won value credited to the channels of each lead's touchpoints under the four models, and the
conversion of the leads of each source — figures worked out by hand.

p's journey, every touch at 10:00 UTC: 03-01 an anonymous visit from google/cpc/spring; 03-02
identified (created) from newsletter/email/march; 03-05 linkedin/social/abm; handed off 03-06,
accepted 03-07, SQL 03-08; 03-09 google/cpc/spring again; opportunity 03-10; 03-12 a visit
referred by a partner; won 03-15 for 1,000. q: no touch at all, its source field says "event";
created 03-03, handed off 03-04.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook
from leadrelay.reports.periods import Period
from leadrelay.reports.sources import SourcesReport, sources_report

from .report_histories import History, at

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), "UTC")
GOOGLE = {"source": "google", "medium": "cpc", "name": "spring"}


@pytest.fixture
def history(engine: Engine, playbook: Playbook) -> History:
    h = History(engine, playbook)
    h.visit(None, at("2026-03-01 10:00"), campaign=GOOGLE, anonymous="visitor-1")
    h.lead("p@firm.example", at("2026-03-02 10:00"), anonymous="visitor-1",
           campaign={"source": "newsletter", "medium": "email", "name": "march"})
    h.visit("p@firm.example", at("2026-03-05 10:00"), campaign={"source": "linkedin", "medium": "social", "name": "abm"})
    h.hand_off("p@firm.example", at("2026-03-06 10:00"))
    h.act("p@firm.example", "accept", at("2026-03-07 10:00"))
    h.act("p@firm.example", "move", at("2026-03-08 10:00"), to="sql")
    h.visit("p@firm.example", at("2026-03-09 10:00"), campaign=GOOGLE)
    h.act("p@firm.example", "move", at("2026-03-10 10:00"), to="opportunity")
    h.visit("p@firm.example", at("2026-03-12 10:00"), campaign={"source": "partner", "medium": "referral"})
    h.act("p@firm.example", "win", at("2026-03-15 10:00"), value=1000)
    h.lead("q@firm.example", at("2026-03-03 10:00"), source="event")
    h.hand_off("q@firm.example", at("2026-03-04 10:00"))
    return h


def credits(report: SourcesReport, outcome: str) -> dict[str, dict[str, float]]:
    """channel -> model -> credit, leaving out channels with none."""
    return {row.channel: {model: round(value, 6) for model, value in row.credit[outcome].items()}
            for row in report.channels if any(row.credit[outcome].values())}


def models(first: float, last: float, linear: float, w_shaped: float) -> dict[str, float]:
    return {"first_touch": round(first, 6), "last_touch": round(last, 6), "linear": round(linear, 6),
            "w_shaped": round(w_shaped, 6)}


def test_each_outcome_is_credited_to_the_touchpoints_before_it(history: History) -> None:
    report = history.read(sources_report, MARCH)

    assert report.totals == {"lead": 2, "mql": 2, "sql": 1, "won": 1}
    # creating p: the google visit and the newsletter identify; q: its source field
    assert credits(report, "lead") == {"google": models(1, 0, 1 / 2, 1 / 2), "newsletter": models(0, 1, 1 / 2, 1 / 2),
                                       "event": models(1, 1, 1, 1)}
    # p's MQL: google, newsletter, linkedin; W-shaped 30/30 to first and lead-creation touch, 10 to linkedin
    assert credits(report, "mql") == {"google": models(1, 0, 1 / 3, 3 / 7), "newsletter": models(0, 0, 1 / 3, 3 / 7),
                                      "linkedin": models(0, 1, 1 / 3, 1 / 7), "event": models(1, 1, 1, 1)}
    assert credits(report, "sql") == {"google": models(1, 0, 1 / 3, 3 / 7), "newsletter": models(0, 0, 1 / 3, 3 / 7),
                                      "linkedin": models(0, 1, 1 / 3, 1 / 7)}
    # the win: 5 touches; google holds the first touch and the opportunity's (09 March) touch
    assert credits(report, "won") == {"google": models(1, 0, 0.4, 0.6), "newsletter": models(0, 0, 0.2, 0.3),
                                      "linkedin": models(0, 0, 0.2, 0.05), "partner": models(0, 1, 0.2, 0.05)}
    value = {row.channel: row.won_value for row in report.channels if any(row.won_value.values())}
    assert value == {"google": {"first_touch": 1000, "last_touch": 0, "linear": 400, "w_shaped": 600},
                     "newsletter": {"first_touch": 0, "last_touch": 0, "linear": 200, "w_shaped": 300},
                     "linkedin": {"first_touch": 0, "last_touch": 0, "linear": 200, "w_shaped": 50},
                     "partner": {"first_touch": 0, "last_touch": 1000, "linear": 200, "w_shaped": 50}}
    assert report.won_value == 1000


def test_conversion_per_source_of_the_leads_created_in_the_period(history: History) -> None:
    report = history.read(sources_report, MARCH)
    conversion = {row.channel: (row.leads, row.mqls, row.won, row.mql_rate, row.win_rate)
                  for row in report.channels if row.leads}
    # p's source is its first touch's (google), q's its field
    assert conversion == {"google": (1, 1, 1, 1.0, 1.0), "event": (1, 1, 0, 1.0, 0.0)}


def test_credit_by_medium_and_by_campaign(history: History) -> None:
    by_medium = history.read(sources_report, MARCH, breakdown="medium")
    assert credits(by_medium, "won") == {"cpc": models(1, 0, 0.4, 0.6), "email": models(0, 0, 0.2, 0.3),
                                         "social": models(0, 0, 0.2, 0.05), "referral": models(0, 1, 0.2, 0.05)}
    assert credits(by_medium, "lead")["(none)"] == models(1, 1, 1, 1)  # q has no medium
    by_campaign = history.read(sources_report, MARCH, breakdown="campaign")
    assert credits(by_campaign, "won") == {"spring": models(1, 0, 0.4, 0.6), "march": models(0, 0, 0.2, 0.3),
                                           "abm": models(0, 0, 0.2, 0.05), "(none)": models(0, 1, 0.2, 0.05)}


def test_outcomes_count_in_the_period_they_happened(history: History) -> None:
    april = history.read(sources_report, Period(date(2026, 4, 1), date(2026, 4, 30), "UTC"))
    assert april.totals == {"lead": 0, "mql": 0, "sql": 0, "won": 0}
    assert april.channels == [] and april.won_value == 0
    first_week = history.read(sources_report, Period(date(2026, 3, 1), date(2026, 3, 7), "UTC"))
    assert first_week.totals == {"lead": 2, "mql": 2, "sql": 0, "won": 0}

"""The joint meeting report (SQLite and PostgreSQL), on the hand-built history of
`report_histories.march`: March 2026 against the 31 days before it (29 January – 28 February),
its changes told as sentences, and one HTML file that fetches nothing when opened."""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook
from leadrelay.reports.meeting import Meeting, build_meeting, render_html, write_meeting
from leadrelay.reports.periods import Period

from .report_histories import NOW, History, march

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), "UTC")


@pytest.fixture
def meeting(engine: Engine, playbook: Playbook) -> Meeting:
    return march(History(engine, playbook)).read(build_meeting, MARCH, NOW)


class Links(HTMLParser):
    """Every address an HTML page would fetch or link to, and its scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.addresses += [value or "" for name, value in attrs if name in ("src", "href", "xlink:href", "action")]


def test_the_headline_figures_against_the_period_before(meeting: Meeting) -> None:
    figures = {f.label: (f.current, f.previous) for f in meeting.figures}
    assert figures == {
        "leads created": (5, 1),  # a-e; before: f
        "MQLs": (3, 1),  # a, b, c (skipped to SAL); before: f
        "MQL → SAL acceptance": (1.0, 1.0),
        "SQLs": (2, 0),  # f 03-05, a 03-06
        "deals won": (1, 0),
        "value won": (10000, 0),
        "lead → customer conversion": (0.2, 0.0),
        "median sales cycle": (18 * 86400, None),
        "median time from MQL to first touch": (2 * 3600, 6 * 3600),  # a 2 h (c 24 h); before: f 6 h
        "SLA clocks met": (1.0, 1.0),  # no clock breached (the sweep never ran in this history)
    }
    assert meeting.sentences == [
        "Leads created rose from 1 to 5.",
        "MQLs rose from 1 to 3.",
        "SQLs rose from 0 to 2.",
        "Deals won rose from 0 to 1.",
        "Value won rose from 0 to 10,000.",
        "Lead → customer conversion rose from 0 % to 20 %.",
        "Median time from MQL to first touch shortened from 6.0 hours to 2.0 hours.",
    ]
    # hand-offs per week (from Monday) against the 40 a week of the default playbook
    assert meeting.weekly == [("03-01", 0), ("03-02", 2), ("03-09", 1), ("03-16", 0), ("03-23", 0), ("03-30", 0)]
    assert meeting.weekly_target == 40
    assert meeting.sla.hand_backs == {"bad timing": 1}
    assert meeting.best == [] and meeting.worst == []  # no source has 5 leads: too few to judge


def test_the_html_is_one_self_contained_file(meeting: Meeting) -> None:
    html = render_html(meeting)
    links = Links()
    links.feed(html)

    assert links.scripts == 0
    assert all(address.startswith("#") for address in links.addresses), links.addresses
    assert not re.search(r"url\((?!#)", html)  # no style sheet, font or image from elsewhere
    assert set(re.findall(r"https?://[^\"'\s<>)]+", html)) <= {"http://www.w3.org/2000/svg",
                                                              "http://www.w3.org/1999/xlink"}
    assert html.count("<svg ") == len(meeting.charts) == 7
    for sentence in meeting.sentences:
        assert sentence in html
    assert "MQL → SAL acceptance" in html and "bad timing" in html


def test_a_png_of_each_chart_is_written_beside_it_on_request(meeting: Meeting, tmp_path: Path) -> None:
    out = tmp_path / "march.html"
    written = write_meeting(meeting, out, png=True)

    assert written[0] == out and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(path.name for path in written[1:]) == sorted(
        f"march-{name}.png" for name in ("funnel", "conversion", "mql-volume", "time-in-stage", "sources", "sla",
                                         "hand-backs"))
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written[1:])
    assert write_meeting(meeting, tmp_path / "plain.html") == [tmp_path / "plain.html"]

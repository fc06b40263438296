"""Content items and shares in the store, and the content report on a hand-built history
(SQLite and PostgreSQL): the share of content sales uses, the items it never uses, and the content
consumed by leads won and lost — figures worked out by hand.

Items: the asset "ebook-scoring", the webinar "webinar-abm", the page "/pricing", the email
"nurture-1". Leads (times at 10:00 UTC):
  w1  downloads the ebook 03-02, visits /pricing 03-03; handed off 03-04 ... won 03-10; downloads
      the ebook again 03-12 (after it closed: not counted).
  l1  downloads the ebook 03-02, attends the webinar 03-05; handed off 03-06 ... lost 03-15.
  w2  opens the nurture-1 email 03-02; handed off 03-03 ... won 03-20.
  w3  downloads the ebook 03-02; won 04-02 (outside March).
Shares: Maya the ebook with w1 on 03-05 and with l1 on 03-07; Daniel the webinar with l1 on 03-06;
Daniel the nurture-1 email with w2 in February.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine

from leadrelay.domain.errors import InvalidInput, LeadNotFound
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.content import content_report
from leadrelay.reports.periods import Period
from leadrelay.services import content as content_service

from .report_histories import DANIEL, MAYA, NOW, History, at

MARCH = Period(date(2026, 3, 1), date(2026, 3, 31), "UTC")


def win(h: History, email: str, start: str, won: str) -> None:
    h.hand_off(email, at(f"2026-{start} 10:00"))
    for step, to in enumerate(("sal", "sql", "opportunity"), start=1):
        h.act(email, "move", at(f"2026-{start} 1{step}:00"), to=to)
    h.act(email, "win", at(f"2026-{won} 10:00"), value=500)


@pytest.fixture
def history(engine: Engine, playbook: Playbook) -> History:
    h = History(engine, playbook)
    for kind, key, title in (("asset", "ebook-scoring", "Lead scoring ebook"), ("webinar", "webinar-abm", "ABM basics"),
                             ("page", "/pricing", "Pricing"), ("email", "nurture-1", "Nurture 1")):
        content_service.add_item(h.uow(), kind=kind, key=key, title=title, now=at("2026-01-01 10:00"))
    for email in ("w1", "l1", "w2", "w3"):
        h.lead(f"{email}@firm.example", at("2026-03-01 10:00"))
    h.did("w1@firm.example", at("2026-03-02 10:00"), "Downloaded", asset="ebook-scoring")
    h.visit("w1@firm.example", at("2026-03-03 10:00"), path="/pricing")
    win(h, "w1@firm.example", "03-04", "03-10")
    h.did("w1@firm.example", at("2026-03-12 10:00"), "Downloaded", asset="ebook-scoring")
    h.did("l1@firm.example", at("2026-03-02 10:00"), "Downloaded", asset="ebook-scoring")
    h.did("l1@firm.example", at("2026-03-05 10:00"), "Webinar Attended", webinar="webinar-abm")
    h.hand_off("l1@firm.example", at("2026-03-06 10:00"))
    h.act("l1@firm.example", "move", at("2026-03-07 11:00"), to="sal")
    h.act("l1@firm.example", "move", at("2026-03-08 11:00"), to="sql")
    h.act("l1@firm.example", "move", at("2026-03-09 11:00"), to="opportunity")
    h.act("l1@firm.example", "lose", at("2026-03-15 10:00"), reason="price")
    h.did("w2@firm.example", at("2026-03-02 10:00"), "Email Opened", campaign="nurture-1")
    win(h, "w2@firm.example", "03-03", "03-20")
    h.did("w3@firm.example", at("2026-03-02 10:00"), "Downloaded", asset="ebook-scoring")
    win(h, "w3@firm.example", "03-05", "04-02")
    share = content_service.share
    share(h.uow(), kind="asset", key="ebook-scoring", email="w1@firm.example", by=MAYA, at=at("2026-03-05 10:00"), now=NOW)
    share(h.uow(), kind="webinar", key="webinar-abm", email="l1@firm.example", by=DANIEL, at=at("2026-03-06 10:00"),
          now=NOW)
    share(h.uow(), kind="asset", key="ebook-scoring", email="l1@firm.example", by=MAYA, at=at("2026-03-07 10:00"), now=NOW)
    share(h.uow(), kind="email", key="nurture-1", email="w2@firm.example", by=DANIEL, at=at("2026-02-10 10:00"), now=NOW)
    return h


def test_the_share_of_content_sales_used_and_what_it_never_used(history: History) -> None:
    report = history.read(content_report, MARCH)

    assert (report.items, report.items_shared, report.used_by_sales) == (4, 2, 0.5)
    assert [(u.group, u.items, u.shared, u.share) for u in report.usage] == [
        ("asset", 1, 1, 1.0), ("email", 1, 0, 0.0), ("page", 1, 0, 0.0), ("webinar", 1, 1, 1.0)]
    assert [(i.title, i.never_shared) for i in report.not_shared] == [("Nurture 1", False), ("Pricing", True)]
    ebook = next(i for i in report.content if i.key == "ebook-scoring")
    assert (ebook.shares, ebook.leads_shared_with, ebook.shares_ever) == (2, 2, 2)


def test_usage_by_rep_and_by_team(history: History) -> None:
    by_rep = {u.group: (u.items, u.shared, u.share) for u in history.read(content_report, MARCH, breakdown="rep").usage}
    assert by_rep[MAYA] == (4, 1, 0.25) and by_rep[DANIEL] == (4, 1, 0.25)
    assert by_rep["tom.wright@sales.leadrelay.example"] == (4, 0, 0.0)  # every rep of the playbook is listed
    by_team = {u.group: (u.shared, u.share) for u in history.read(content_report, MARCH, breakdown="team").usage}
    assert by_team == {"americas": (2, 0.5), "apac": (0, 0.0), "emea": (0, 0.0)}


def test_content_consumed_before_closing_by_leads_won_and_lost(history: History) -> None:
    report = history.read(content_report, MARCH)

    assert (report.won_leads, report.lost_leads, report.win_rate) == (2, 1, 2 / 3)  # w3 was won in April
    found = {i.key: (i.won, i.lost, i.win_rate, i.few) for i in report.content}
    assert found == {
        "ebook-scoring": (1, 1, 0.5, True),  # w1 and l1 (w3 closed in April)
        "webinar-abm": (0, 1, 0.0, True),
        "/pricing": (1, 0, 1.0, True),
        "nurture-1": (1, 0, 1.0, True),
    }
    ebook = next(i for i in report.content if i.key == "ebook-scoring")
    assert (round(ebook.low, 4), round(ebook.high, 4)) == (0.0945, 0.9055)  # type: ignore[arg-type]
    assert report.content[0].key == "ebook-scoring"  # the most consumed first

    april = history.read(content_report, Period(date(2026, 4, 1), date(2026, 4, 30), "UTC"))
    assert (april.won_leads, april.lost_leads) == (1, 0)
    assert {i.key: (i.won, i.lost) for i in april.content}["ebook-scoring"] == (1, 0)  # w3
    assert april.items_shared == 0 and april.used_by_sales == 0.0


def test_an_archived_item_leaves_the_report(history: History) -> None:
    item = content_service.items(history.uow(), kind="page")[0]
    content_service.update_item(history.uow(), item["id"], archived=True, now=NOW)
    report = history.read(content_report, MARCH)
    assert report.items == 3 and "/pricing" not in {i.key for i in report.content}


def test_content_items_and_shares_are_checked(history: History) -> None:
    with pytest.raises(InvalidInput, match="already a content item of kind asset"):
        content_service.add_item(history.uow(), kind="asset", key="ebook-scoring", now=NOW)
    with pytest.raises(InvalidInput, match="kind: 'video' is not one of asset, page, email, webinar"):
        content_service.add_item(history.uow(), kind="video", key="x", now=NOW)
    with pytest.raises(LeadNotFound):
        content_service.share(history.uow(), kind="asset", key="ebook-scoring", email="nobody@firm.example", by=MAYA,
                              now=NOW)
    with pytest.raises(content_service.ContentItemNotFound):
        content_service.share(history.uow(), item_id=999, email="w1@firm.example", by=MAYA, now=NOW)
    with pytest.raises(InvalidInput, match="in the future"):
        content_service.share(history.uow(), item_id=1, email="w1@firm.example", by=MAYA, at=at("2027-01-01 00:00"),
                              now=NOW)
    shares = content_service.shares(history.uow(), by=MAYA)
    assert [(s["email"], s["title"]) for s in shares] == [("l1@firm.example", "Lead scoring ebook"),
                                                          ("w1@firm.example", "Lead scoring ebook")]
    assert shares[0]["deal_id"] is not None  # l1's deal was open when Maya shared the ebook

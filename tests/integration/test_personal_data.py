"""A person's data (SQLite and PostgreSQL): erasure leaves nothing that names them in any table,
while every report's figures stay what they were; export gives everything held about them; the
retention setting deletes old raw events and leaves scores alone."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, func, insert, select

from leadrelay.adapters import tables
from leadrelay.adapters.rejections import Rejection
from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import LeadNotFound
from leadrelay.domain.model import Touch
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.content import content_report
from leadrelay.reports.funnel import funnel_report
from leadrelay.reports.meeting import Meeting, build_meeting
from leadrelay.reports.periods import Period
from leadrelay.reports.sla import sla_report
from leadrelay.reports.sources import sources_report
from leadrelay.reports.velocity import velocity_report
from leadrelay.services import deals as deal_service
from leadrelay.services import nurture
from leadrelay.services import webhooks as webhook_service
from leadrelay.services.personal_data import (
    apply_retention,
    erase_person,
    export_person,
)
from leadrelay.services.unit_of_work import UnitOfWork

from .report_histories import NOW, REP, History, at, march

SPRING = Period(date(2026, 2, 1), date(2026, 4, 30), "UTC")
ANN, ANN_HOME, NAME, VISITOR = "a@firm.example", "ann.lee@home.example", "Ann Quintessa Lee", "visitor-ann-7781"
CARL = "c@firm.example"


def _history(engine: Engine, playbook: Playbook) -> History:
    """March's six leads, with personal data about Ann (a@) everywhere it can be: her name, a
    second address merged into her lead, a visitor id with a waiting event, a webhook payload,
    a touch's note, a suppression, a refused tracking message."""
    h = History(engine, playbook)
    # subscribed before the hand-offs: their payloads name the leads
    webhook_service.create(UnitOfWork(engine), name="crm", url="https://crm.example/hook", events=["*"],
                           now=at("2026-02-01 09:00"))
    h.lead(ANN_HOME, at("2026-03-01 09:00"), anonymous=VISITOR)
    h._send({"type": "identify", "messageId": "ann-name", "userId": ANN, "timestamp": "2026-03-02T09:30:00Z",
             "traits": {"email": ANN, "name": NAME, "company": "Firm Inc"}})
    march(h)
    h.merge(ANN_HOME, ANN, at("2026-03-02 12:00"))
    h.visit(None, at("2026-03-05 10:00"), anonymous="visitor-ann-other")  # waits for a lead: not Ann's
    deal_service.log_touch(UnitOfWork(engine), playbook, h.deal(ANN), Touch(
        "note", at("2026-03-05 10:00"), REP, note=f"{NAME} asked for the price list at {ANN}"), at("2026-03-05 10:00"))
    nurture.suppress(UnitOfWork(engine), ANN, "unsubscribed", at("2026-03-21 10:00"), note="asked by phone")
    with UnitOfWork(engine) as uow:
        uow.rejections.add([Rejection("timestamp: in the future", json.dumps({"userId": ANN, "email": ANN}), "m-1")],
                           api_key_id=None, now=at("2026-03-21 10:00"))
        uow.commit()
    if "lead_scores" in tables.metadata.tables:  # a predicted score, its reasons naming her company
        models, scores = tables.metadata.tables["models"], tables.metadata.tables["lead_scores"]
        with engine.begin() as connection:
            model = connection.execute(insert(models).values(
                kind="win", version=1, created_at=NOW, created_by="cli", active=False, rows=10, metrics={},
                artifact=b"-", sha256="0" * 64)).inserted_primary_key[0]
            ann = connection.scalar(select(tables.leads.c.id).where(tables.leads.c.email == ANN))
            connection.execute(insert(scores).values(lead_id=ann, model_id=model, p_win=0.4,
                                                     reasons=[["company = Firm Inc", 0.3]], scored_at=NOW))
    return h


def _figures(h: History) -> list[Any]:
    """Every report, on March and around it."""
    return [
        h.read(funnel_report, SPRING), h.read(funnel_report, SPRING, breakdown="source"),
        h.read(funnel_report, SPRING, cohort="mql"), h.read(velocity_report, SPRING, NOW),
        h.read(sources_report, SPRING), h.read(content_report, SPRING),
        h.read(lambda connection, playbook: sla_report(connection, playbook, SPRING.start, SPRING.end, NOW)),
        _numbers(h.read(build_meeting, Period(date(2026, 3, 1), date(2026, 3, 31), "UTC"), NOW)),
    ]


def _numbers(meeting: Meeting) -> Meeting:
    """The meeting report without its charts' drawings (compared by what they were drawn from)."""
    return replace(meeting, charts=[])


def _holding(engine: Engine, *needles: str) -> list[str]:
    """Every table.column:needle (of every table in the database) where a value holds a needle."""
    found = []
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.connect() as connection:
        for table in reflected.sorted_tables:
            for row in connection.execute(select(table)):
                for column, value in row._mapping.items():
                    text = (value if isinstance(value, str) else json.dumps(value, default=str)).lower()
                    found += [f"{table.name}.{column}:{needle}" for needle in needles if needle.lower() in text]
    return sorted(set(found))


def test_an_erased_person_is_named_nowhere_and_every_report_keeps_its_figures(engine: Engine,
                                                                              playbook: Playbook) -> None:
    h = _history(engine, playbook)
    before = _figures(h)
    assert {"leads.email", "events.traits", "identities.value", "outbox.payload", "touches.note",
            "suppressions.email", "rejected_messages.message", "deals.package"} <= {
        found.split(":")[0] for found in _holding(engine, ANN, NAME)}

    erasure = erase_person(UnitOfWork(engine), " A@Firm.example ", actor="cli", now=NOW)
    erase_person(UnitOfWork(engine), CARL, actor="cli", now=NOW)

    assert len(erasure.lead_ids) == 2  # her lead and the address merged into it
    assert erasure.removed["events"] >= 3 and erasure.removed["identities"] >= 2 and erasure.removed["outbox"] >= 1
    assert _holding(engine, ANN, ANN_HOME, NAME, VISITOR, "Firm Inc", CARL) == []
    assert _figures(h) == before
    with engine.connect() as connection:
        kept = connection.execute(select(tables.leads).where(tables.leads.c.id.in_(erasure.lead_ids))).all()
        assert [(lead.fields, lead.account_id) for lead in kept] == [({}, None), ({}, None)]
        assert connection.scalar(select(func.count()).select_from(tables.erasures)) == 3
        assert connection.scalar(select(func.count()).select_from(tables.events)
                                 .where(tables.events.c.anonymous_id == "visitor-ann-other")) == 1  # not hers
        assert connection.scalar(select(func.count()).select_from(tables.leads)) == 7  # the counts keep every lead
    with pytest.raises(LeadNotFound, match="already erased"):
        erase_person(UnitOfWork(engine), ANN, actor="cli", now=NOW)


def test_an_export_holds_every_row_about_the_person_and_nobody_elses(engine: Engine, playbook: Playbook) -> None:
    _history(engine, playbook)
    exported = export_person(UnitOfWork(engine), ANN, NOW)

    assert exported["emails"] == [ANN, ANN_HOME] and len(exported["lead_ids"]) == 2
    held = exported["tables"]
    for name in ("leads", "identities", "events", "stage_changes", "deals", "deal_activity", "touches", "clocks",
                 "outbox", "suppressions", "rejected_messages"):
        assert held.get(name), f"the export has no {name}"
    text = json.dumps(exported)
    assert NAME in text and VISITOR in text and "price list" in text
    assert "b@firm.example" not in text and "f@firm.example" not in text
    assert {row["lead_id"] for row in held["events"]} <= set(exported["lead_ids"])
    with pytest.raises(LeadNotFound):
        export_person(UnitOfWork(engine), "nobody@firm.example", NOW)


def test_retention_deletes_only_the_raw_events_older_than_the_setting_and_keeps_the_scores(
    engine: Engine, playbook: Playbook
) -> None:
    h = History(engine, playbook)
    h.lead("old@firm.example", NOW - timedelta(days=50))
    with UnitOfWork(engine) as uow:
        for days in (40, 2):
            uow.rejections.add([Rejection("timestamp: in the future", '{"userId": "old@firm.example"}', None)],
                               api_key_id=None, now=NOW - timedelta(days=days))
        uow.commit()
    for day in (45, 40, 20, 5):
        h.did("old@firm.example", NOW - timedelta(days=day), "Webinar Attended", webinar="w")
    with engine.connect() as connection:
        scores = connection.execute(select(tables.leads.c.fit, tables.leads.c.engagement)).all()
        total = connection.scalar(select(func.count()).select_from(tables.events))

    assert apply_retention(lambda: UnitOfWork(engine), 0, NOW) == 0  # 0: kept forever
    assert apply_retention(lambda: UnitOfWork(engine), 30, NOW, batch=1) == 3  # the identify and two webinars

    with engine.connect() as connection:
        left = connection.scalars(select(tables.events.c.timestamp)).all()
        assert connection.execute(select(tables.leads.c.fit, tables.leads.c.engagement)).all() == scores
    assert len(left) == total - 3 and all(moment.astimezone(UTC) >= NOW - timedelta(days=30) for moment in left)
    with engine.connect() as connection:  # the refused messages too
        assert connection.scalars(select(tables.rejected_messages.c.received_at)).all() == [NOW - timedelta(days=2)]

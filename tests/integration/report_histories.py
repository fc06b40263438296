"""Hand-built histories for the report tests: leads created, touched, handed off, accepted, won,
lost, handed back, at moments the test chooses, all through LeadRelay's own use cases (the
tracking batch path, lead moves, deal actions, touches), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from leadrelay.adapters import tables
from leadrelay.adapters.analytics import refresh
from leadrelay.adapters.segment import to_event
from leadrelay.domain.clock import UTC
from leadrelay.domain.model import Touch
from leadrelay.domain.playbook import Playbook
from leadrelay.services import deals as deal_service
from leadrelay.services import leads as lead_service
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

# Everything below happens before this moment; the reports run "now".
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REP = "maya.johnson@sales.leadrelay.example"  # the Americas team's reps take the US leads in turn


def at(text: str) -> datetime:
    """'2026-03-02 10:00' (UTC) as a moment."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class History:
    """Drives the real use cases; every moment is given by the test."""

    def __init__(self, engine: Engine, playbook: Playbook, *, timezone: str | None = None) -> None:
        self.engine = engine
        self.playbook = replace(playbook, timezone=timezone) if timezone else playbook
        self.count = 0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def _send(self, *messages: dict[str, Any]) -> None:
        events = [to_event(message, self.playbook, NOW) for message in messages]
        ingest(self.uow(), self.playbook, events, NOW)

    def _id(self) -> str:
        self.count += 1
        return f"h-{self.count}"

    # --- marketing ------------------------------------------------------------------------
    def lead(self, email: str, when: datetime, *, source: str | None = None, company_size: int | None = None,
             country: str = "US", campaign: dict[str, str] | None = None, anonymous: str | None = None) -> str:
        """A new lead, known from `when`; `campaign` (source, medium, name) makes its first touch."""
        traits: dict[str, Any] = {"email": email, "country": country, "title": "Analyst"}
        if source:
            traits["source"] = source
        if company_size is not None:
            traits["company_size"] = company_size
        message: dict[str, Any] = {"type": "identify", "messageId": self._id(), "userId": email,
                                   "timestamp": when.isoformat(), "traits": traits}
        if campaign:
            message["context"] = {"campaign": campaign}
        if anonymous:
            message["anonymousId"] = anonymous
        self._send(message)
        return email

    def visit(self, email: str | None, when: datetime, *, campaign: dict[str, str] | None = None,
              path: str = "/blog/post", anonymous: str | None = None) -> None:
        """A page view, from a campaign when one is given (a touchpoint); by an `anonymous` visitor
        not yet known as the lead, when given."""
        message: dict[str, Any] = {"type": "page", "messageId": self._id(), "timestamp": when.isoformat(),
                                   "properties": {"path": path}}
        if email:
            message["userId"] = email
        if anonymous:
            message["anonymousId"] = anonymous
        if campaign:
            message["context"] = {"campaign": campaign}
        self._send(message)

    def did(self, email: str, when: datetime, event: str, **properties: Any) -> None:
        """A tracked event (a download, a webinar attended, an email opened, ...)."""
        self._send({"type": "track", "messageId": self._id(), "userId": email, "event": event,
                    "timestamp": when.isoformat(), "properties": properties})

    # --- the funnel -------------------------------------------------------------------------
    def move(self, email: str, stage: str, when: datetime, *, reason: str | None = None, by: str = REP) -> None:
        lead_service.move_lead(self.uow(), self.playbook, email, stage, by=by, reason=reason, now=when)

    def deal(self, email: str) -> int:
        """The lead's latest deal."""
        with self.engine.connect() as connection:
            lead_id = connection.scalar(select(tables.leads.c.id).where(tables.leads.c.email == email))
            return connection.scalar(select(tables.deals.c.id).where(tables.deals.c.lead_id == lead_id)
                                     .order_by(tables.deals.c.id.desc()).limit(1))

    def act(self, email: str, action: str, when: datetime, **details: Any) -> None:
        """accept, reject (reason), disqualify (reason), win (value), lose (reason), move (to), reassign (owner)."""
        deal_service.act(self.uow(), self.playbook, self.deal(email), action, by=details.pop("by", REP), now=when,
                         **details)

    def call(self, email: str, when: datetime, kind: str = "call") -> None:
        deal_service.log_touch(self.uow(), self.playbook, self.deal(email), Touch(kind, when, REP), when)

    def hand_off(self, email: str, when: datetime) -> None:
        self.move(email, "mql", when, by="rule:mql")

    def merge(self, duplicate: str, into: str, when: datetime) -> None:
        lead_service.merge_leads(self.uow(), self.playbook, duplicate, into, when)

    # --- reading ----------------------------------------------------------------------------
    def refresh(self, now: datetime = NOW) -> Any:
        return refresh(self.engine, self.playbook, now)

    def read(self, report: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `report(connection, playbook, *args)` on up-to-date analytics tables."""
        self.refresh()
        with self.engine.connect() as connection:
            return report(connection, self.playbook, *args, **kwargs)


def days(count: float) -> timedelta:
    return timedelta(days=count)


MAYA = "maya.johnson@sales.leadrelay.example"
DANIEL = "daniel.okafor@sales.leadrelay.example"
ETHAN = "ethan.brooks@sales.leadrelay.example"


def march(history: History) -> History:
    """Six leads around March 2026 (every time UTC, at 10:00 unless said):

    a  created 03-02 (webinar, 50 employees); handed off 03-03 to Maya, called 12:00; accepted 03-04,
       SQL 03-06, opportunity 03-10, won 03-20 for 10,000.
    b  created 03-05 (webinar, 500); handed off 03-06 to Daniel; handed back 03-07 (bad timing);
       an MQL again 03-15 (a new deal, Daniel's); accepted 03-16 and still there. Never called.
    c  created 03-08 (paid search, 5,000); fast-tracked to SAL 03-09 (skipping MQL), Maya's; called
       03-10 10:00; disqualified 03-12 (not a fit).
    d  created 03-10 (paid search, size unknown); still a lead.
    e  created 03-31 23:30 (no source); still a lead.
    f  created 02-20 (event, 150); handed off 02-27 to Ethan, called 16:00; accepted 03-02, SQL 03-05,
       opportunity 03-08, lost 03-25 (price).
    """
    h = history
    h.lead("f@firm.example", at("2026-02-20 10:00"), source="event", company_size=150)
    h.hand_off("f@firm.example", at("2026-02-27 10:00"))
    h.act("f@firm.example", "reassign", at("2026-02-27 10:00"), owner=ETHAN)
    h.call("f@firm.example", at("2026-02-27 16:00"))
    h.act("f@firm.example", "accept", at("2026-03-02 10:00"))
    h.act("f@firm.example", "move", at("2026-03-05 10:00"), to="sql")
    h.act("f@firm.example", "move", at("2026-03-08 10:00"), to="opportunity")
    h.act("f@firm.example", "lose", at("2026-03-25 10:00"), reason="price")

    h.lead("a@firm.example", at("2026-03-02 10:00"), source="webinar", company_size=50)
    h.hand_off("a@firm.example", at("2026-03-03 10:00"))
    h.act("a@firm.example", "reassign", at("2026-03-03 10:00"), owner=MAYA)
    h.call("a@firm.example", at("2026-03-03 12:00"))
    h.act("a@firm.example", "accept", at("2026-03-04 10:00"))
    h.act("a@firm.example", "move", at("2026-03-06 10:00"), to="sql")
    h.act("a@firm.example", "move", at("2026-03-10 10:00"), to="opportunity")
    h.act("a@firm.example", "win", at("2026-03-20 10:00"), value=10000)

    h.lead("b@firm.example", at("2026-03-05 10:00"), source="webinar", company_size=500)
    h.hand_off("b@firm.example", at("2026-03-06 10:00"))
    h.act("b@firm.example", "reassign", at("2026-03-06 10:00"), owner=DANIEL)
    h.act("b@firm.example", "reject", at("2026-03-07 10:00"), reason="bad timing")
    h.hand_off("b@firm.example", at("2026-03-15 10:00"))
    h.act("b@firm.example", "reassign", at("2026-03-15 10:00"), owner=DANIEL)
    h.act("b@firm.example", "accept", at("2026-03-16 10:00"))

    h.lead("c@firm.example", at("2026-03-08 10:00"), source="paid search", company_size=5000)
    h.move("c@firm.example", "sal", at("2026-03-09 10:00"), by="fast_track:demo request")
    h.act("c@firm.example", "reassign", at("2026-03-09 10:00"), owner=MAYA)
    h.call("c@firm.example", at("2026-03-10 10:00"))
    h.act("c@firm.example", "disqualify", at("2026-03-12 10:00"), reason="not a fit")

    h.lead("d@firm.example", at("2026-03-10 10:00"), source="paid search")
    h.lead("e@firm.example", at("2026-03-31 23:30"))
    return h

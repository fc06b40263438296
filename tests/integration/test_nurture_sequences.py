"""Nurture sequences end to end below HTTP: leads enter and leave the default playbook's sequences as
they move, the worker's step renders each email and writes it to the outbox with its run's change,
the outbox delivers it to a real SMTP server (aiosmtpd on 127.0.0.1), and a controllable clock runs
the waits. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from receivers import ReceivedMail, SmtpServer
from sqlalchemy import Engine, func, select

from leadrelay.adapters import tables
from leadrelay.adapters.email import SmtpSender, SmtpSettings
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.adapters.segment import to_event
from leadrelay.adapters.webhooks import WebhookSender
from leadrelay.config import Settings
from leadrelay.domain.clock import UTC
from leadrelay.domain.nurture import EnrollmentRefused, QuietHours, RateLimits
from leadrelay.domain.playbook import Playbook
from leadrelay.services import leads as lead_service
from leadrelay.services import nurture
from leadrelay.services.delivery import Deliverer
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FIT = {"title": "VP Marketing", "industry": "software", "company_size": 500, "name": "Ann Lee"}  # fit 70


class Nurture:
    """The system under test, driven as the server and its worker drive it, at moments the test picks."""

    def __init__(self, engine: Engine, playbook: Playbook, server: SmtpServer, **settings: Any) -> None:
        self.engine, self.playbook, self.server = engine, playbook, server
        options = {"limits": RateLimits(), "quiet": QuietHours(time(21), time(8)), **settings}
        self.settings = nurture.NurtureSettings(**options)
        self.signer = nurture.link_signer(self.uow, Settings(public_url="https://relay.example"), MONDAY)
        sender = SmtpSender(SmtpSettings(host=server.host, port=server.port, timeout=5.0))
        self.deliverer = Deliverer(self.uow, webhooks=WebhookSender(), email=sender,
                                   screen=lambda uow, items: nurture.screen(uow, self.playbook, items))
        self.delivered = 0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def track(self, email: str, event: str | None = None, at: datetime = MONDAY, **traits: Any) -> None:
        message: dict[str, Any] = {"userId": email, "timestamp": at.isoformat()}
        if event is None:
            message.update(type="identify", traits={"email": email, **traits})
        else:
            message.update(type="track", event=event, properties={})
        ingest(self.uow(), self.playbook, [to_event(message, self.playbook, at)], at)

    def step(self, now: datetime) -> list[ReceivedMail]:
        """One worker round at `now`: due steps run, the outbox is delivered; the emails that arrived."""
        nurture.advance(self.uow, self.playbook, self.settings, self.signer, now)
        self.deliverer.deliver_due(now)
        arrived = self.server.messages[self.delivered:]
        self.delivered += len(arrived)
        return arrived

    def runs(self, email: str) -> list[tuple[str, str, str | None]]:
        runs = nurture.enrollments(self.uow(), lead_ref=email)
        return [(run.sequence, run.status, run.exit_reason) for run in reversed(runs)]

    def ingest_tracked(self, tracked: nurture.Tracked | None) -> None:
        """Store a link's event as the server's writer does."""
        assert tracked is not None and tracked.event is not None
        ingest(self.uow(), self.playbook, [tracked.event], tracked.event.timestamp)

    def outbox_statuses(self) -> list[tuple[str, str | None]]:
        with self.engine.connect() as connection:
            return [(row.status, row.last_error) for row in
                    connection.execute(select(tables.outbox).where(tables.outbox.c.kind == "email")
                                       .order_by(tables.outbox.c.id))]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def relay(engine: Engine, playbook: Playbook, smtp: SmtpServer) -> Nurture:
    return Nurture(engine, playbook, smtp)


def links_in(mail: ReceivedMail, kind: str) -> list[str]:
    html = mail.message.get_body(("html",)).get_content()
    return [link.replace("&amp;", "&") for link in re.findall(rf'https://relay\.example/email/{kind}/[^"\s]+', html)]


def token(link: str) -> str:
    return link.rsplit("/", 1)[1]


# --- enrollment, waits and branches ---------------------------------------------------------------


def test_a_new_lead_enters_the_welcome_sequence_and_gets_its_first_email_with_one_click_unsubscribe(relay: Nurture):
    relay.track("ann@acme.example", **FIT)

    [mail] = relay.step(MONDAY)

    assert relay.runs("ann@acme.example") == [("welcome", "active", None)]
    message = mail.message
    assert mail.recipients == ("ann@acme.example",)
    assert message["Subject"] == "Welcome, Ann: where to start"
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(r"<https://relay\.example/email/unsubscribe/[\w\-]+\.[\w\-]+>", unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.strip("<>") in message.get_body(("plain",)).get_content()  # and a link in the body
    assert unsubscribe.strip("<>") in message.get_body(("html",)).get_content()
    [click] = links_in(mail, "click")
    assert relay.signer.read("click", token(click))["u"] == "https://www.leadrelay.example/guides/start"
    assert len(links_in(mail, "open")) == 1
    assert message["Message-ID"].endswith("@leadrelay>")


def test_the_wait_holds_the_next_email_until_its_time_and_an_unclicked_email_leads_to_the_case_study(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    relay.step(MONDAY)

    assert relay.step(MONDAY + 2 * DAY) == []  # the sequence waits three days
    [second] = relay.step(MONDAY + 3 * DAY)

    assert second.message["Subject"] == "How teams like acme.example hand off leads in minutes"
    assert relay.step(MONDAY + 5 * DAY) == []
    [third] = relay.step(MONDAY + 7 * DAY)
    assert third.message["Subject"] == "Plans and prices, plainly"
    assert relay.step(MONDAY + 30 * DAY) == []
    assert relay.runs("ann@acme.example") == [("welcome", "completed", None)]


def test_a_reader_who_clicked_the_last_email_skips_ahead_to_pricing(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    [first] = relay.step(MONDAY)
    [link] = links_in(first, "click")
    tracked = nurture.clicked(relay.uow(), relay.signer, token(link), MONDAY + timedelta(hours=2))
    relay.ingest_tracked(tracked)

    [second] = relay.step(MONDAY + 3 * DAY)

    assert tracked.target == "https://www.leadrelay.example/guides/start"
    assert second.message["Subject"] == "Plans and prices, plainly"
    assert relay.runs("ann@acme.example") == [("welcome", "completed", None)]
    view = lead_service.view_lead(relay.uow(), relay.playbook, "ann@acme.example", MONDAY + 3 * DAY)
    assert "email click" in view.engagement_breakdown  # the click counts for scoring


# --- exits ------------------------------------------------------------------------------------------


def test_a_lead_that_becomes_an_mql_leaves_the_sequence_and_gets_no_more_nurture_mail(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    relay.step(MONDAY)
    for event in ("webinar_attended", "form_submit", "download"):  # 45 engagement: an MQL
        relay.track("ann@acme.example", event, MONDAY + DAY)

    assert relay.runs("ann@acme.example") == [("welcome", "exited", "mql")]
    assert relay.step(MONDAY + 10 * DAY) == []
    [stats] = nurture.analytics(relay.uow(), relay.playbook, "welcome")
    assert stats.totals["mqls"] == 1 and stats.steps[0].counts["mqls"] == 1  # credited to the email it read last
    assert stats.totals["sent"] == 1 and stats.totals["delivered"] == 1


def test_an_email_queued_before_the_lead_moved_to_sales_is_held_back_at_delivery(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    nurture.advance(relay.uow, relay.playbook, relay.settings, relay.signer, MONDAY)  # queued, not yet delivered
    relay.track("ann@acme.example", "demo_request", MONDAY)  # fast track to sales

    assert relay.step(MONDAY + timedelta(minutes=1)) == []

    assert relay.outbox_statuses()[0] == ("dead", "not sent: sales")
    [stats] = nurture.analytics(relay.uow(), relay.playbook, "welcome")
    assert stats.totals["sent"] == 0 and stats.totals["mqls"] == 1


def test_a_lead_handed_to_sales_in_its_first_batch_never_enters_nurture(relay: Nurture):
    message = {"type": "track", "userId": "bo@acme.example", "event": "Demo Requested",
               "timestamp": MONDAY.isoformat(), "context": {"traits": {"email": "bo@acme.example"}}}
    ingest(relay.uow(), relay.playbook, [to_event(message, relay.playbook, MONDAY)], MONDAY)

    assert relay.step(MONDAY) == []
    assert relay.runs("bo@acme.example") == []


def test_a_customer_and_a_lead_in_sales_cannot_be_put_in_a_sequence_by_hand(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    relay.track("ann@acme.example", "demo_request", MONDAY)
    with pytest.raises(EnrollmentRefused, match="gets no nurture mail \\(sales\\)"):
        nurture.enroll(relay.uow(), relay.playbook, "welcome", "ann@acme.example", MONDAY)
    for stage in ("sql", "opportunity", "customer"):
        lead_service.move_lead(relay.uow(), relay.playbook, "ann@acme.example", stage, by="rep", reason=None, now=MONDAY)

    with pytest.raises(EnrollmentRefused, match="gets no nurture mail \\(customer\\)"):
        nurture.enroll(relay.uow(), relay.playbook, "re_nurture", "ann@acme.example", MONDAY)
    assert relay.step(MONDAY + 30 * DAY) == []


# --- hand-back and re-enrollment --------------------------------------------------------------------


def test_a_handed_back_lead_is_re_nurtured_and_again_after_a_second_hand_back_a_month_later(relay: Nurture):
    email = "ann@acme.example"
    relay.track(email, **FIT)
    relay.step(MONDAY)
    relay.track(email, "demo_request", MONDAY + DAY)
    lead_service.move_lead(relay.uow(), relay.playbook, email, "recycled", by="rep", reason="bad timing",
                           now=MONDAY + 2 * DAY)

    assert relay.runs(email) == [("welcome", "exited", "sales"), ("re_nurture", "active", None)]
    assert relay.step(MONDAY + 15 * DAY) == []  # it waits two weeks first
    [check_in] = relay.step(MONDAY + 16 * DAY)
    assert check_in.message["Subject"] == "Still on your list, Ann?"

    relay.track(email, "demo_request", MONDAY + 17 * DAY)  # back to sales: the run ends
    lead_service.move_lead(relay.uow(), relay.playbook, email, "recycled", by="rep", reason="no budget",
                           now=MONDAY + 18 * DAY)
    assert [run[:2] for run in relay.runs(email)][-1] == ("re_nurture", "exited")  # 30 days have not passed

    relay.track(email, "demo_request", MONDAY + 60 * DAY)
    lead_service.move_lead(relay.uow(), relay.playbook, email, "recycled", by="rep", reason="no budget",
                           now=MONDAY + 61 * DAY)
    assert relay.runs(email)[-1] == ("re_nurture", "active", None)
    assert [run[0] for run in relay.runs(email)].count("welcome") == 1  # welcome is once only


# --- consent ------------------------------------------------------------------------------------------


def test_an_unsubscribe_is_honoured_everywhere(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    [first] = relay.step(MONDAY)
    nurture.advance(relay.uow, relay.playbook, relay.settings, relay.signer, MONDAY + 3 * DAY)  # the next is queued
    unsubscribe = first.message["List-Unsubscribe"].strip("<>")

    tracked = nurture.unsubscribed(relay.uow(), relay.signer, token(unsubscribe), MONDAY + 3 * DAY)
    relay.ingest_tracked(tracked)

    assert relay.step(MONDAY + 3 * DAY) == []  # the queued email is held back
    assert relay.outbox_statuses()[-1] == ("dead", "not sent: unsubscribed")
    assert relay.runs("ann@acme.example") == [("welcome", "exited", "unsubscribed")]
    with pytest.raises(EnrollmentRefused, match="unsubscribed"):
        nurture.enroll(relay.uow(), relay.playbook, "re_nurture", "ann@acme.example", MONDAY + 4 * DAY)
    assert [(row["email"], row["reason"]) for row in nurture.suppressions(relay.uow())] == [
        ("ann@acme.example", "unsubscribed")]
    [stats] = nurture.analytics(relay.uow(), relay.playbook, "welcome")
    assert stats.steps[0].counts["unsubscribed"] == 1
    lead = lead_service.view_lead(relay.uow(), relay.playbook, "ann@acme.example", MONDAY).lead
    events = [event.name for _, event in lead_service.timeline(relay.uow(), lead.id, before=None, limit=10)]
    assert "unsubscribe" in events  # in the lead's timeline, for scoring (the playbook's `unsubscribed` rule)


def test_a_suppressed_address_never_enters_a_sequence(relay: Nurture):
    nurture.suppress(relay.uow(), "ann@acme.example", "manual", MONDAY, note="asked by phone")
    relay.track("ann@acme.example", **FIT)

    assert relay.step(MONDAY) == []
    assert relay.runs("ann@acme.example") == []


def test_a_hard_bounce_and_a_complaint_suppress_the_address_and_end_its_runs(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    relay.track("bo@acme.example", name="Bo")
    ann, _bo = relay.step(MONDAY)

    assert not nurture.bounced(relay.uow(), "ann@acme.example", MONDAY, permanent=False)  # a soft bounce: retried
    assert nurture.bounced(relay.uow(), "Ann@Acme.example", MONDAY, message_id=ann.message["Message-ID"])
    nurture.complained(relay.uow(), "bo@acme.example", MONDAY)

    assert relay.runs("ann@acme.example") == [("welcome", "exited", "bounced")]
    assert relay.runs("bo@acme.example") == [("welcome", "exited", "complained")]
    assert relay.step(MONDAY + 10 * DAY) == []
    [stats] = nurture.analytics(relay.uow(), relay.playbook, "welcome")
    assert stats.steps[0].counts["bounced"] == 1 and stats.steps[0].counts["delivered"] == 1


# --- quiet hours, rate limits, one sequence of a kind -------------------------------------------------


def test_an_email_due_in_the_leads_night_waits_for_its_morning(relay: Nurture):
    relay.track("kenji@acme.example", name="Kenji", timezone="Asia/Tokyo")  # 10:00 UTC is 19:00 in Tokyo
    late = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo

    assert relay.step(late) == []
    assert relay.step(datetime(2026, 3, 2, 22, 59, tzinfo=UTC)) == []  # 07:59 in Tokyo
    assert len(relay.step(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))) == 1  # 08:00 in Tokyo


def test_the_per_domain_rate_limit_moves_the_rest_to_the_next_minute(engine: Engine, playbook: Playbook,
                                                                     smtp: SmtpServer):
    relay = Nurture(engine, playbook, smtp, limits=RateLimits(per_window=10, per_domain=2))
    for name in ("a", "b", "c"):
        relay.track(f"{name}@big.example", name=name.upper())
    relay.track("d@other.example", name="D")

    first = relay.step(MONDAY)
    later = relay.step(MONDAY + timedelta(minutes=1))

    assert sorted(mail.recipients[0] for mail in first) == ["a@big.example", "b@big.example", "d@other.example"]
    assert [mail.recipients[0] for mail in later] == ["c@big.example"]


def test_a_lead_is_in_one_sequence_of_a_kind_at_a_time(engine: Engine, smtp: SmtpServer):
    text = default_playbook_text().replace("\nautomations:\n", """
  - id: software
    name: Software segment
    trigger: segment
    when: lead.industry == "software"
    steps:
      - email: case_study
  - id: onboarding
    kind: onboarding
    trigger: stage_entered
    stage: lead
    steps:
      - email: pricing

automations:
  - name: big companies get the case study
    trigger: score_crossed
    score: fit
    above: 60
    do:
      - enroll: software
""", 1)
    playbook = parse_playbook(text)
    relay = Nurture(engine, playbook, smtp)
    relay.track("ann@acme.example", name="Ann")

    relay.track("ann@acme.example", **FIT)  # now in the software segment, and over 60 fit: still in welcome only

    assert sorted(relay.runs("ann@acme.example")) == [("onboarding", "active", None), ("welcome", "active", None)]
    nurture.remove(relay.uow(), nurture.enrollments(relay.uow(), lead_ref="ann@acme.example", sequence="welcome")[0].id,
                   MONDAY)
    relay.track("ann@acme.example", "page_view", MONDAY)  # a segment is looked at when the lead does something
    assert ("software", "active", None) in relay.runs("ann@acme.example")
    with engine.connect() as connection:
        active = connection.scalar(select(func.count()).select_from(tables.sequence_enrollments).where(
            tables.sequence_enrollments.c.status == "active"))
    assert active == 2


def test_each_email_is_written_with_its_send_and_its_runs_step_in_one_transaction(relay: Nurture):
    relay.track("ann@acme.example", **FIT)
    broken = replace(relay.settings, batch=1)
    nurture.advance(relay.uow, relay.playbook, broken, relay.signer, MONDAY)

    with relay.engine.connect() as connection:
        sends = connection.execute(select(tables.email_sends.c.key)).scalars().all()
        items = connection.execute(select(tables.outbox.c.key).where(tables.outbox.c.kind == "email")).scalars().all()
        [run] = connection.execute(select(tables.sequence_enrollments)).all()
    assert sends == items and len(sends) == 1
    assert (run.step, run.last_email_step, run.next_at) == (2, 0, MONDAY + 3 * DAY)


def test_an_email_whose_template_fails_for_a_lead_is_not_sent_and_the_run_says_why(engine: Engine, smtp: SmtpServer):
    text = default_playbook_text().replace(
        "subject: \"Welcome, {{ lead.first_name | default('there') }}: where to start\"",
        "subject: \"Welcome {{ 10 / (lead.name | length - lead.name | length) }}\"", 1)
    relay = Nurture(engine, parse_playbook(text), smtp)
    relay.track("ann@acme.example", name="Ann")
    relay.track("bo@acme.example")

    assert relay.step(MONDAY) == []

    assert relay.runs("ann@acme.example") == [("welcome", "exited", "template_error")]
    assert relay.outbox_statuses() == []

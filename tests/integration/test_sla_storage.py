"""SLA clocks in the store (SQLite and PostgreSQL): started with the deal, met by touches and
moves, and warned, breached and escalated by the sweep at their time — with nobody touching the
deal — exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from leadrelay.adapters import tables
from leadrelay.domain.clock import UTC
from leadrelay.domain.model import Touch
from leadrelay.services import deals as deal_service
from leadrelay.services import webhooks as webhook_service
from leadrelay.services.sla import sweep

from .support import NOW, Store, identify, track

AT = "2026-11-20T10:00:00Z"  # a Friday; NOW is 12:00 UTC (13:00 in Berlin)


def hand_off(store: Store, number: int = 1, country: str = "DE") -> dict:
    user = f"u-{number}"
    store.send(identify(f"i-{number}", AT, user_id=user, email=f"lead{number}@firm{number}.example", country=country,
                        title="VP Sales"),
               track(f"d-{number}", AT, "Demo Requested", user_id=user))
    return [deal for deal in store.rows(tables.deals) if deal["lead_id"] == store.lead(
        f"lead{number}@firm{number}.example").id][-1]


def clocks(store: Store) -> dict[str, dict]:
    return {clock["commitment"]: clock for clock in store.rows(tables.clocks)}


def test_a_hand_off_starts_the_deals_clocks_in_its_teams_business_hours(store: Store) -> None:
    hand_off(store)

    found = clocks(store)
    assert set(found) == {"answer the hand-off", "first touch", "keep trying"}
    answer = found["answer the hand-off"]
    # handed off Friday 11:00 in Berlin: 4 business hours end at 15:00 the same day
    assert answer["started_at"] == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert answer["due_at"] == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
    # 8 business hours: 6 on Friday, 2 on Monday (the weekend does not count)
    assert found["first touch"]["due_at"] == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert all(clock["status"] == "running" and clock["owner"] for clock in found.values())


def test_the_sweep_breaches_a_clock_nobody_touched_and_tells_the_manager_once(store: Store) -> None:
    webhook_service.create(store.uow(), name="ops", url="http://127.0.0.1:9/hook", events=["deal.sla_breach"], now=NOW)
    deal = hand_off(store)

    assert sweep(store.uow, store.playbook, datetime(2026, 11, 20, 13, 0, tzinfo=UTC)) == 1  # the answer warns
    assert sweep(store.uow, store.playbook, datetime(2026, 11, 20, 14, 0, tzinfo=UTC)) == 1  # and breaches
    assert sweep(store.uow, store.playbook, datetime(2026, 11, 20, 14, 30, tzinfo=UTC)) == 0  # once

    answer = clocks(store)["answer the hand-off"]
    assert (answer["status"], answer["ended_at"]) == ("breached", datetime(2026, 11, 20, 14, 0, tzinfo=UTC))
    assert answer["warned_at"] == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    items = store.rows(tables.outbox)
    manager = [item for item in items if item["event"] == "sla.breach"]
    assert len(manager) == 1 and manager[0]["payload"]["to"] == ["head.of.sales@sales.leadrelay.example"]
    [hook] = [item for item in items if item["kind"] == "webhook"]
    assert hook["payload"]["data"]["clock"]["commitment"] == "answer the hand-off"
    assert store.rows(tables.deals)[0]["owner"] == deal["owner"]  # this commitment does not reassign


def test_a_breached_first_touch_goes_to_the_next_rep_whose_clock_starts_again(store: Store) -> None:
    deal = hand_off(store)
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

    sweep(store.uow, store.playbook, monday)

    [moved] = store.rows(tables.deals)
    assert moved["owner"] != deal["owner"] and moved["team"] == "emea"
    assert store.lead("lead1@firm1.example").owner == moved["owner"]
    first_touch = [c for c in store.rows(tables.clocks) if c["commitment"] == "first touch"]
    assert [(c["status"], c["owner"]) for c in first_touch] == [("breached", deal["owner"]), ("running", moved["owner"])]
    assert first_touch[1]["started_at"] == monday
    assert [a["action"] for a in store.rows(tables.deal_activity)][-1] == "reassigned"


def test_a_touch_meets_first_touch_and_enough_attempts_meet_persistence(store: Store) -> None:
    deal = hand_off(store)
    for n in range(3):
        deal_service.log_touch(store.uow(), store.playbook, deal["id"],
                               Touch("call", NOW + timedelta(minutes=n), deal["owner"], "no answer"), NOW + timedelta(hours=1))

    found = clocks(store)
    assert found["first touch"]["status"] == "met" and found["first touch"]["ended_at"] == NOW
    assert found["keep trying"]["status"] == "met" and found["keep trying"]["ended_at"] == NOW + timedelta(minutes=2)


def test_accepting_meets_the_answer_clock_and_the_sweep_leaves_met_clocks_alone(store: Store) -> None:
    deal = hand_off(store, country="US")
    deal_service.act(store.uow(), store.playbook, deal["id"], "move", to="sql", by="rep", now=NOW)

    found = clocks(store)
    assert found["answer the hand-off"]["status"] == "met"
    assert found["no idle SQLs"]["status"] == "running"
    assert sweep(store.uow, store.playbook, NOW + timedelta(days=30)) >= 1
    assert clocks(store)["answer the hand-off"]["status"] == "met"
    assert clocks(store)["no idle SQLs"]["status"] == "breached"


def test_many_clocks_coming_due_at_once_are_all_fired_once(store: Store) -> None:
    for number in range(30):
        hand_off(store, number, country="US")
    later = NOW + timedelta(days=10)

    fired = sweep(store.uow, store.playbook, later) + sweep(store.uow, store.playbook, later)

    statuses = Counter((c["commitment"], c["status"]) for c in store.rows(tables.clocks))
    assert statuses[("answer the hand-off", "breached")] == 30
    assert statuses[("keep trying", "breached")] == 30
    assert fired == sum(n for (_, status), n in statuses.items() if status == "breached")


def test_the_sla_report_shows_compliance_response_times_risk_breaches_and_marketings_numbers(store: Store) -> None:
    from leadrelay.reports.sla import sla_report

    answered, ignored, rejected = hand_off(store, 1), hand_off(store, 2), hand_off(store, 3)
    deal_service.act(store.uow(), store.playbook, answered["id"], "move", to="sql", by="rep",
                     now=NOW + timedelta(minutes=30))
    deal_service.act(store.uow(), store.playbook, rejected["id"], "reject", reason="no budget", by="rep",
                     now=NOW + timedelta(minutes=45))
    friday_late = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    sweep(store.uow, store.playbook, friday_late)  # the ignored deal's answer clock breached at 14:00

    with store.uow() as uow:
        report = sla_report(uow.connection, store.playbook, datetime(2026, 11, 2, tzinfo=UTC),
                            datetime(2026, 11, 30, tzinfo=UTC), friday_late, by="team")

    answer = next(row for row in report.compliance if row.commitment == "answer the hand-off")
    assert (answer.group, answer.met, answer.breached, answer.rate) == ("emea", 2, 1, 2 / 3)
    assert report.response["accept"]["count"] == 2
    assert report.response["accept"]["median_seconds"] == (30 + 45) / 2 * 60 + 2 * 3600  # handed off at 10:00
    assert [row["deal_id"] for row in report.breaches] == [ignored["id"]]
    # 17:00 in Berlin: 6 of the 8 business hours for a first touch have passed (75 %), nobody touched
    assert {(row["deal_id"], row["commitment"]) for row in report.at_risk} >= {(ignored["id"], "first touch")}
    volume, acceptance = report.marketing
    assert [p["mqls"] for p in volume.periods if p["mqls"]] == [3] and volume.target == 40
    assert (acceptance.actual, acceptance.met) == (0.5, False)  # one accepted, one handed back
    assert acceptance.by_source == {"(unknown)": {"mqls": 3, "accepted": 1, "rejected": 1, "qualified": 1,
                                                  "acceptance_rate": 0.5, "sql_rate": 1 / 3}}
    assert report.hand_backs == {"no budget": 1}


def test_a_reassignment_by_escalation_restarts_the_deals_other_running_clocks_too(store: Store) -> None:
    from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook

    store.playbook = parse_playbook(default_playbook_text().replace(
        "      measure: accept\n      within_hours: 4", "      measure: accept\n      within_hours: 24").replace(
        "      measure: first_touch\n      within_hours: 8", "      measure: first_touch\n      within_hours: 2"))
    deal = hand_off(store)

    sweep(store.uow, store.playbook, datetime(2026, 11, 20, 12, 0, tzinfo=UTC))  # first touch breached at 12:00

    [moved] = store.rows(tables.deals)
    answers = [(c["status"], c["owner"]) for c in store.rows(tables.clocks) if c["commitment"] == "answer the hand-off"]
    assert moved["owner"] != deal["owner"]
    assert answers == [("stopped", deal["owner"]), ("running", moved["owner"])]

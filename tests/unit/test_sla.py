"""SLA clocks: started at the right moment, met by the right action, warned and breached at
their time in business hours, stopped when the deal no longer owes them."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from leadrelay.domain import sla
from leadrelay.domain.business_time import BusinessHours
from leadrelay.domain.deals import Deal, follow, hand_back, open_deal
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import Touch
from leadrelay.domain.routing import Assignment

from .builders import lead_in

BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_EVENING = datetime(2026, 3, 6, 18, 0, tzinfo=BERLIN)  # after hours, before a weekend
HOURS = BusinessHours(zone=BERLIN, opens=time(9), closes=time(17))
ACCEPT = sla.Commitment("answer", "accept", timedelta(hours=4), restart_on_reassign=False)
FIRST_TOUCH = sla.Commitment("first touch", "first_touch", timedelta(hours=8), restart_on_reassign=True)
ATTEMPTS = sla.Commitment("keep trying", "attempts", timedelta(days=5), business=False, attempts=2)
IDLE_SQL = sla.Commitment("no idle SQLs", "stage_time", timedelta(days=14), business=False, stage="sql")
SLA = sla.Sla((ACCEPT, FIRST_TOUCH, ATTEMPTS, IDLE_SQL), {"emea": HOURS})


def deal_at(playbook, at: datetime = FRIDAY_EVENING, team: str = "emea") -> Deal:
    lead = lead_in(playbook, at=at - timedelta(days=1))
    change = move(lead, "mql", playbook=playbook, at=at, by="rule:mql")
    return open_deal(change, Assignment(team, "lena@seller.example", "EMEA", "rule 'EMEA'"), {})


def by_name(clocks: list[sla.Clock]) -> dict[str, sla.Clock]:
    return {clock.commitment: clock for clock in clocks}


def test_a_hand_off_on_friday_evening_is_due_on_monday_in_business_hours(playbook):
    clocks = by_name(sla.on_hand_off(deal_at(playbook), FRIDAY_EVENING, SLA))

    assert set(clocks) == {"answer", "first touch", "keep trying"}  # the SQL idle clock waits for SQL
    assert clocks["answer"].due_at == datetime(2026, 3, 9, 13, 0, tzinfo=BERLIN)
    assert clocks["answer"].warn_at == datetime(2026, 3, 9, 12, 0, tzinfo=BERLIN)  # at 75 %
    assert clocks["keep trying"].due_at == FRIDAY_EVENING + timedelta(days=5)  # calendar days: wall time


def test_a_team_without_business_hours_counts_wall_time(playbook):
    clocks = by_name(sla.on_hand_off(deal_at(playbook, team="americas"), FRIDAY_EVENING, SLA))

    assert clocks["answer"].due_at == FRIDAY_EVENING + timedelta(hours=4)


def test_answering_the_hand_off_meets_the_accept_clock_and_starts_the_next_stages_clock(playbook):
    deal = deal_at(playbook)
    clocks = sla.on_hand_off(deal, FRIDAY_EVENING, SLA)
    monday = datetime(2026, 3, 9, 10, 0, tzinfo=BERLIN)
    for stage in ("sal", "sql"):
        change = move(deal.lead, stage, playbook=playbook, at=monday, by="lena")
        follow(deal, change, playbook)
        clocks += sla.on_move(clocks, deal, change.from_stage, monday, SLA)

    found = by_name(clocks)
    assert (found["answer"].status, found["answer"].ended_at) == ("met", monday)
    assert found["no idle SQLs"].running and found["no idle SQLs"].due_at == monday + timedelta(days=14)
    assert found["first touch"].running  # accepting is not touching


def test_touches_meet_first_touch_and_then_attempts_notes_do_not_count(playbook):
    deal = deal_at(playbook)
    clocks = by_name(sla.on_hand_off(deal, FRIDAY_EVENING, SLA))
    saturday = FRIDAY_EVENING + timedelta(hours=16)

    sla.on_touch(clocks.values(), Touch("note", saturday, "lena"), 0, SLA)
    assert clocks["first touch"].running
    sla.on_touch(clocks.values(), Touch("call", saturday, "lena"), 1, SLA)  # logged before acceptance: counts
    assert clocks["first touch"].status == "met" and clocks["keep trying"].running
    sla.on_touch(clocks.values(), Touch("email", saturday, "lena"), 2, SLA)
    assert clocks["keep trying"].status == "met"


def test_a_clock_warns_once_then_breaches_at_its_due_time_even_if_nobody_touches_the_deal(playbook):
    clock = by_name(sla.on_hand_off(deal_at(playbook), FRIDAY_EVENING, SLA))["answer"]

    assert sla.due(clock, clock.warn_at - timedelta(seconds=1)) is None
    assert sla.due(clock, clock.warn_at) == "warning"
    assert sla.due(clock, clock.warn_at + timedelta(minutes=1)) is None  # warned once
    assert sla.due(clock, clock.due_at) == "breach"
    assert (clock.status, clock.ended_at) == ("breached", clock.due_at)
    assert sla.due(clock, clock.due_at + timedelta(days=1)) is None  # breached once


def test_a_sweep_long_after_both_moments_breaches_without_a_separate_warning(playbook):
    clock = by_name(sla.on_hand_off(deal_at(playbook), FRIDAY_EVENING, SLA))["answer"]

    assert sla.due(clock, clock.due_at + timedelta(hours=3)) == "breach"
    assert clock.ended_at == clock.due_at  # breached at its due time, not when it was noticed


def test_a_hand_back_meets_the_answer_and_attempts_and_stops_first_touch(playbook):
    deal = deal_at(playbook)
    clocks = by_name(sla.on_hand_off(deal, FRIDAY_EVENING, SLA))
    change = hand_back(deal, "not ready", playbook, at=FRIDAY_EVENING + timedelta(hours=1), by="lena")
    follow(deal, change, playbook)

    assert sla.on_move(clocks.values(), deal, change.from_stage, change.at, SLA) == []
    assert {name: clock.status for name, clock in clocks.items()} == {
        "answer": "met", "keep trying": "met", "first touch": "stopped"}


def test_reassignment_restarts_the_clocks_that_say_so(playbook):
    deal = deal_at(playbook)
    clocks = sla.on_hand_off(deal, FRIDAY_EVENING, SLA)
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)

    fresh = by_name(sla.on_reassign(clocks, deal, monday, SLA))
    before = by_name(clocks)

    assert set(fresh) == {"first touch"}  # the answer clock keeps running: it does not restart
    assert (before["first touch"].status, before["answer"].status) == ("stopped", "running")
    assert fresh["first touch"].due_at == datetime(2026, 3, 9, 17, 0, tzinfo=BERLIN)


def test_commitments_bind_only_their_teams(playbook):
    emea_only = sla.Sla((sla.Commitment("emea answer", "accept", timedelta(hours=1), teams=frozenset({"emea"})),))

    assert sla.on_hand_off(deal_at(playbook, team="apac"), FRIDAY_EVENING, emea_only) == []
    assert len(sla.on_hand_off(deal_at(playbook, team="emea"), FRIDAY_EVENING, emea_only)) == 1

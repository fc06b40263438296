"""Deals follow their leads: opened at the hand-off, moved and closed by the lead's moves,
with the hand-off package that tells the rep why the lead is here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from leadrelay.domain import deals
from leadrelay.domain.errors import DealClosed, MoveNotAllowed, ReasonRequired
from leadrelay.domain.lifecycle import move
from leadrelay.domain.routing import Assignment

from .builders import days, event, lead_in

ROUTED = Assignment(team="emea", owner="lena@seller.example", rule="EMEA", reason="rule 'EMEA' → team 'emea'")


def handed_off(playbook, to="mql"):
    lead = lead_in(playbook)
    lead.id = 1
    change = move(lead, to, playbook=playbook, at=days(1), by="rule:mql")
    return deals.open_deal(change, ROUTED, {"events": 0}), change


def test_entering_sales_from_marketing_is_a_hand_off_and_moving_inside_sales_is_not(playbook):
    lead = lead_in(playbook)
    to_mql = move(lead, "mql", playbook=playbook, at=days(1), by="rule:mql")
    to_sal = move(lead, "sal", playbook=playbook, at=days(2), by="rep")

    assert deals.is_hand_off(to_mql, playbook)
    assert not deals.is_hand_off(to_sal, playbook)


def test_a_fast_tracked_lead_is_handed_off_straight_into_sal(playbook):
    lead = lead_in(playbook)
    change = move(lead, "sal", playbook=playbook, at=days(1), by="fast_track:demo request")

    assert deals.is_hand_off(change, playbook)


def test_a_new_deal_has_the_routed_owner_and_says_why(playbook):
    deal, _ = handed_off(playbook)

    assert (deal.stage, deal.team, deal.owner, deal.is_open) == ("mql", "emea", "lena@seller.example", True)
    assert deal.lead.owner == "lena@seller.example" and deal.assigned_at == days(1)
    assert deal.log[0].action == "opened" and "EMEA" in deal.log[0].note


def test_a_deal_waiting_in_the_queue_has_no_owner_until_reassigned(playbook):
    lead = lead_in(playbook)
    change = move(lead, "mql", playbook=playbook, at=days(1), by="rule:mql")
    deal = deals.open_deal(change, Assignment("unassigned", None, None, "no routing rule matched"), {})

    assert deal.owner is None and deal.assigned_at is None
    deals.reassign(deal, "kim@seller.example", at=days(2), by="manager")
    assert (deal.owner, deal.lead.owner, deal.assigned_at) == ("kim@seller.example", "kim@seller.example", days(2))
    assert deal.log[-1].action == "reassigned"


def test_accepting_moves_the_lead_to_the_stage_after_mql(playbook):
    deal, _ = handed_off(playbook)
    change = deals.accept(deal, playbook, at=days(2), by="lena")
    deals.follow(deal, change, playbook)

    assert (deal.lead.stage, deal.stage, deal.is_open) == ("sal", "sal", True)
    assert deal.log[-1].action == "moved" and deal.log[-1].by == "lena"


def test_rejecting_hands_the_lead_back_to_nurture_with_its_reason_and_closes_the_deal(playbook):
    deal, _ = handed_off(playbook)
    change = deals.hand_back(deal, "bad timing", playbook, at=days(2), by="lena", note="try in Q3")
    deals.follow(deal, change, playbook)

    assert deal.lead.stage == "recycled" and not deal.is_open
    assert (deal.outcome, deal.close_reason) == ("handed_back", "bad timing")
    assert (deal.log[-1].action, deal.log[-1].note) == ("handed_back", "try in Q3")


def test_a_hand_back_needs_one_of_the_playbooks_reasons(playbook):
    deal, _ = handed_off(playbook)

    with pytest.raises(ReasonRequired, match="no budget"):
        deals.hand_back(deal, "meh", playbook, at=days(2), by="lena")
    assert deal.lead.stage == "mql"


def test_a_hand_back_resets_engagement_when_the_playbook_says_so(playbook):
    resetting = replace(playbook, hand_back_resets_engagement=True)
    deal, _ = handed_off(resetting)
    deal.lead.engagement.total = 55.0

    deals.hand_back(deal, "not ready", resetting, at=days(2), by="lena")

    assert deal.lead.engagement.total == 0 and deal.lead.engagement.rules == {}


def test_winning_records_the_value_and_losing_needs_a_lost_reason(playbook):
    deal, _ = handed_off(playbook)
    for stage in ("sal", "sql", "opportunity"):
        deals.follow(deal, deals.move_deal(deal, stage, playbook, at=days(3), by="lena"), playbook)
    with pytest.raises(ReasonRequired):
        deals.lose(deal, None, playbook, at=days(4), by="lena")

    deals.follow(deal, deals.win(deal, 12_000.0, playbook, at=days(4), by="lena"), playbook)

    assert (deal.stage, deal.outcome, deal.value, deal.is_open) == ("customer", "won", 12_000.0, False)
    assert deal.log[-1].value == 12_000.0


def test_a_closed_deal_does_not_move(playbook):
    deal, _ = handed_off(playbook)
    deals.follow(deal, deals.disqualify(deal, "spam", playbook, at=days(2), by="lena"), playbook)

    with pytest.raises(DealClosed):
        deals.accept(deal, playbook, at=days(3), by="lena")
    with pytest.raises(DealClosed):
        deals.reassign(deal, "kim@seller.example", at=days(3), by="manager")


def test_a_move_the_playbook_does_not_allow_is_refused_and_changes_nothing(playbook):
    deal, _ = handed_off(playbook)

    with pytest.raises(MoveNotAllowed):
        deals.move_deal(deal, "customer", playbook, at=days(2), by="lena")
    assert (deal.lead.stage, deal.stage) == ("mql", "mql")


def test_the_package_shows_content_pages_webinars_forms_and_the_recent_timeline(playbook):
    lead = lead_in(playbook, title="VP Sales", industry="software")
    history = [
        event("page_view", days(1), type="page", properties={"path": "/pricing"}),
        event("page_view", days(2), type="page", properties={"path": "/docs"}),
        event("page_view", days(3), type="page", properties={"path": "/pricing"}),
        event("file_downloaded", days(4), properties={"title": "ROI guide"}),
        event("file_downloaded", days(5), properties={"title": "ROI guide"}),
        event("webinar_attended", days(6), properties={"name": "Spring launch"}),
        event("form_submitted", days(7), properties={"form": "contact"}),
    ]
    package = deals.package(lead, history, engagement=42.0, engagement_breakdown={"form": 15.0},
                            fields={"title": "Job title", "industry": "Industry", "phone": "Phone"})

    assert package["fields"] == [{"name": "title", "label": "Job title", "value": "VP Sales"},
                                 {"name": "industry", "label": "Industry", "value": "software"}]
    assert package["pages"]["recent"][0]["page"] == "/pricing"
    assert package["pages"]["frequent"][0] == {"page": "/pricing", "views": 2}
    assert package["content"] == [{"title": "ROI guide", "times": 2, "last_at": days(5).isoformat()}]
    assert [w["title"] for w in package["webinars"]] == ["Spring launch"]
    assert [f["title"] for f in package["forms"]] == ["contact"]
    assert package["timeline"][0]["name"] == "form_submitted" and package["events"] == 7
    assert package["scores"]["engagement"] == 42.0 and package["scores"]["engagement_breakdown"] == {"form": 15.0}

"""The funnel: only the moves the playbook allows, each one recorded; the automatic moves."""

from __future__ import annotations

import pytest

from leadrelay.domain.errors import MoveNotAllowed, ReasonRequired, UnknownStage
from leadrelay.domain.lifecycle import apply_rules, move
from leadrelay.domain.processing import apply_event

from .builders import T0, days, event, lead_in


def walk(lead, playbook, *stages, reason=None):
    """Move `lead` through `stages`, one day apart, as sales would."""
    for n, stage in enumerate(stages, start=1):
        move(lead, stage, playbook=playbook, at=days(n), by="sales:kim", reason=reason)
    return lead


# --- allowed and refused moves ------------------------------------------------------------


def test_lead_can_be_handed_to_sales_as_an_mql(playbook):
    lead = lead_in(playbook)

    change = move(lead, "mql", playbook=playbook, at=days(1), by="marketing:ann")

    assert lead.stage == "mql"
    assert lead.stage_entered_at == days(1)
    assert (change.from_stage, change.to_stage) == ("lead", "mql")


def test_a_lead_cannot_skip_straight_to_customer(playbook):
    lead = lead_in(playbook)

    with pytest.raises(MoveNotAllowed) as refused:
        move(lead, "customer", playbook=playbook, at=days(1), by="sales:kim")

    message = refused.value.message
    assert "'lead'" in message and "'customer'" in message
    assert "allowed moves: mql, sal, disqualified" in message
    assert refused.value.code == "move_not_allowed"


def test_a_won_customer_is_final_and_can_move_nowhere(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql", "opportunity", "customer")

    with pytest.raises(MoveNotAllowed, match="none: it is a final stage"):
        move(lead, "recycled", playbook=playbook, at=days(9), by="sales:kim", reason="not ready")


def test_a_stage_the_playbook_does_not_know_is_refused_naming_the_known_stages(playbook):
    lead = lead_in(playbook)

    with pytest.raises(UnknownStage) as refused:
        move(lead, "nurture", playbook=playbook, at=days(1), by="sales:kim")

    assert "'nurture'" in refused.value.message
    assert "lead, mql, sal, sql, opportunity, customer, lost, recycled, disqualified" in refused.value.message


def test_a_refused_move_changes_nothing(playbook):
    lead = lead_in(playbook)
    history_before = list(lead.history)

    with pytest.raises(MoveNotAllowed):
        move(lead, "opportunity", playbook=playbook, at=days(1), by="sales:kim")

    assert (lead.stage, lead.highest_stage, lead.stage_entered_at) == ("lead", "lead", T0)
    assert lead.history == history_before


def test_a_lead_can_only_move_as_the_playbook_table_says(playbook):
    for from_stage, stage in playbook.stages.items():
        for to_stage in playbook.stages:
            lead = lead_in(playbook)
            lead.stage = from_stage
            reasons = playbook.reasons_for(to_stage)
            try:
                move(lead, to_stage, playbook=playbook, at=days(1), by="sales:kim",
                     reason=reasons[0] if reasons else None)
            except MoveNotAllowed:
                assert to_stage not in stage.moves, f"{from_stage} -> {to_stage} should be allowed"
            else:
                assert to_stage in stage.moves, f"{from_stage} -> {to_stage} should be refused"


# --- reasons ----------------------------------------------------------------------------


def test_hand_back_requires_a_reason_from_the_playbook(playbook):
    lead = walk(lead_in(playbook), playbook, "mql")

    with pytest.raises(ReasonRequired) as refused:
        move(lead, "recycled", playbook=playbook, at=days(2), by="sales:kim")

    assert "not ready, no budget, no authority, no need, bad timing, no response" in refused.value.message
    assert lead.stage == "mql"


def test_hand_back_with_a_reason_outside_the_playbook_is_refused_and_says_what_was_given(playbook):
    lead = walk(lead_in(playbook), playbook, "mql")

    with pytest.raises(ReasonRequired, match="got 'too pushy'"):
        move(lead, "recycled", playbook=playbook, at=days(2), by="sales:kim", reason="too pushy")

    assert lead.stage == "mql"


def test_hand_back_with_a_playbook_reason_sends_the_lead_to_nurture(playbook):
    lead = walk(lead_in(playbook), playbook, "mql")

    change = move(lead, "recycled", playbook=playbook, at=days(2), by="sales:kim", reason="no budget")

    assert lead.stage == "recycled"
    assert change.reason == "no budget"


def test_disqualifying_requires_a_disqualify_reason_not_a_hand_back_reason(playbook):
    lead = lead_in(playbook)

    with pytest.raises(ReasonRequired, match="competitor, student, spam, duplicate, not a fit"):
        move(lead, "disqualified", playbook=playbook, at=days(1), by="sales:kim", reason="no budget")

    move(lead, "disqualified", playbook=playbook, at=days(1), by="sales:kim", reason="spam")
    assert lead.stage == "disqualified"


# --- history and highest stage --------------------------------------------------------------


def test_every_move_is_recorded_with_from_to_time_actor_and_reason(playbook):
    lead = lead_in(playbook)

    move(lead, "mql", playbook=playbook, at=days(1), by="rule:mql")
    move(lead, "recycled", playbook=playbook, at=days(3), by="sales:kim", reason="bad timing")

    recorded = [(c.from_stage, c.to_stage, c.at, c.by, c.reason) for c in lead.history]
    assert recorded == [
        (None, "lead", T0, "created", None),
        ("lead", "mql", days(1), "rule:mql", None),
        ("mql", "recycled", days(3), "sales:kim", "bad timing"),
    ]
    assert all(change.lead is lead for change in lead.history)


def test_stage_history_never_runs_backwards_in_time(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal")  # in sal since day 2

    change = move(lead, "sql", playbook=playbook, at=days(1), by="sales:kim")  # a clock behind

    assert change.at == days(2)
    assert lead.stage_entered_at == days(2)


def test_recycling_never_lowers_the_highest_stage_reached(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql")

    move(lead, "recycled", playbook=playbook, at=days(4), by="sales:kim", reason="no need")
    assert (lead.stage, lead.highest_stage) == ("recycled", "sql")

    move(lead, "mql", playbook=playbook, at=days(5), by="rule:mql")
    assert (lead.stage, lead.highest_stage) == ("mql", "sql")


def test_a_lost_deal_keeps_opportunity_as_its_highest_stage(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql", "opportunity")
    move(lead, "lost", playbook=playbook, at=days(5), by="sales:kim", reason="price")

    assert (lead.stage, lead.highest_stage) == ("lost", "opportunity")


def test_losing_a_deal_needs_a_lost_reason(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql", "opportunity")

    with pytest.raises(ReasonRequired, match="price"):
        move(lead, "lost", playbook=playbook, at=days(5), by="sales:kim")


def test_winning_makes_customer_the_highest_stage(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql", "opportunity", "customer")

    assert lead.highest_stage == "customer"


def test_disqualifying_a_new_lead_keeps_lead_as_its_highest_stage(playbook):
    lead = lead_in(playbook)

    move(lead, "disqualified", playbook=playbook, at=days(1), by="sales:kim", reason="spam")

    assert (lead.stage, lead.highest_stage) == ("disqualified", "lead")


# --- automatic moves: the MQL rule, fast-track, disqualify ------------------------------------


def qualified_by_fit(playbook, **extra):
    """A lead whose fit meets the MQL rule (software, 500 employees: 25 + 20 = 45 points)."""
    return lead_in(playbook, industry="software", company_size=500, **extra)


def test_lead_meeting_the_mql_rule_is_handed_to_sales_as_an_mql(playbook):
    lead = qualified_by_fit(playbook)
    assert lead.fit == 45

    apply_event(lead, event("form_submit", days(1)), playbook)  # 15
    apply_event(lead, event("webinar_attended", days(1)), playbook)  # 35
    assert lead.stage == "lead"
    apply_event(lead, event("download", days(1)), playbook)  # 45

    assert lead.stage == "mql"
    assert (lead.history[-1].by, lead.history[-1].at) == ("rule:mql", days(1))


def test_engagement_alone_does_not_make_an_mql_without_fit(playbook):
    lead = lead_in(playbook, industry="retail", company_size=5)

    for name in ("form_submit", "webinar_attended", "download", "form_submit"):
        apply_event(lead, event(name, days(1)), playbook)

    assert lead.fit < 40 <= lead.engagement.total
    assert lead.stage == "lead"


def test_a_handed_back_lead_needs_new_activity_to_qualify_again(playbook):
    lead = qualified_by_fit(playbook)
    for name in ("form_submit", "webinar_attended", "download"):
        apply_event(lead, event(name, days(1)), playbook)
    assert lead.stage == "mql"
    move(lead, "recycled", playbook=playbook, at=days(2), by="sales:kim", reason="not ready")

    apply_rules(lead, playbook, days(3), fields_changed=False, scores_changed=False)  # time passed
    assert lead.stage == "recycled"

    apply_event(lead, event("email_click", days(4)), playbook)
    assert lead.stage == "mql"
    assert lead.history[-1].from_stage == "recycled"


def test_demo_request_fast_tracks_to_sales(playbook):
    lead = lead_in(playbook)

    apply_event(lead, event("demo_request", days(1)), playbook)

    assert lead.stage == "sal"
    assert lead.highest_stage == "sal"
    assert lead.history[-1].from_stage == "lead"
    assert lead.history[-1].by == "fast_track:demo request"


def test_demo_request_from_a_recycled_lead_fast_tracks_it_back_to_sales(playbook):
    lead = walk(lead_in(playbook), playbook, "mql")
    move(lead, "recycled", playbook=playbook, at=days(2), by="sales:kim", reason="bad timing")

    apply_event(lead, event("demo_request", days(30)), playbook)

    assert lead.stage == "sal"


def test_fast_track_never_moves_a_lead_backwards(playbook):
    lead = walk(lead_in(playbook), playbook, "mql", "sal", "sql")

    apply_event(lead, event("demo_request", days(10)), playbook)

    assert lead.stage == "sql"


def test_lead_from_a_competitor_domain_is_disqualified_with_reason_competitor(playbook):
    lead = lead_in(playbook, email="spy@rival.example")

    apply_event(lead, event("page_view", days(1), email="spy@rival.example", properties={"path": "/pricing"}), playbook)

    assert lead.stage == "disqualified"
    last = lead.history[-1]
    assert (last.reason, last.by) == ("competitor", "rule:competitor")


def test_student_title_is_disqualified_with_reason_student(playbook):
    lead = lead_in(playbook)

    apply_event(lead, event("identify", days(1), type="identify", traits={"title": "PhD Student"}), playbook)

    assert lead.stage == "disqualified"
    assert lead.history[-1].reason == "student"


def test_ordinary_leads_are_not_disqualified(playbook):
    lead = lead_in(playbook)

    apply_event(lead, event("identify", days(1), type="identify", traits={"title": "Head of Studies"}), playbook)

    assert lead.stage == "lead"


def test_disqualify_rules_win_over_fast_track(playbook):
    lead = lead_in(playbook, email="spy@competitor.example")

    apply_event(lead, event("demo_request", days(1), email="spy@competitor.example"), playbook)

    assert lead.stage == "disqualified"


def test_a_disqualified_lead_stays_out_of_the_funnel(playbook):
    lead = lead_in(playbook)
    move(lead, "disqualified", playbook=playbook, at=days(1), by="sales:kim", reason="spam")

    apply_event(lead, event("demo_request", days(2)), playbook)

    assert lead.stage == "disqualified"
    assert [c.to_stage for c in lead.history] == ["lead", "disqualified"]

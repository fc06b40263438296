"""Moving, merging and rescoring leads, stored on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadrelay.adapters import tables
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.errors import LeadNotFound, MergeNotAllowed, MoveNotAllowed, ReasonRequired, UnknownStage
from leadrelay.services import leads as lead_service

from .support import NOW, Store, identify, page, track

AT = "2026-11-20T09:00:00Z"


def _ann(store: Store) -> None:
    store.send(
        identify("ann-1", AT, user_id="u-ann", email="ann@acme.io", title="VP Sales", industry="software", company_size=500),
        page("ann-2", AT, "/pricing", user_id="u-ann"),
        track("ann-3", AT, "form_submit", user_id="u-ann"),
    )


# --- moves ---------------------------------------------------------------------------------


def test_moving_a_lead_records_who_moved_it_when_and_why_in_its_history(store: Store) -> None:
    _ann(store)
    accepted_at = NOW + timedelta(minutes=5)

    store.move("ann@acme.io", "mql", by="marketing-ops", now=NOW)
    change = store.move("ANN@acme.io ", "recycled", by="rep@seller.example", reason="no budget", now=accepted_at)

    assert (change.from_stage, change.to_stage) == ("mql", "recycled")
    lead = store.lead("ann@acme.io")
    assert (lead.stage, lead.highest_stage, lead.stage_entered_at) == ("recycled", "mql", accepted_at)
    assert store.history("ann@acme.io") == [
        (None, "lead", "created", None),
        ("lead", "mql", "marketing-ops", None),
        ("mql", "recycled", "rep@seller.example", "no budget"),
    ]
    stored = store.rows(tables.stage_changes)
    assert [row["at"] for row in stored[1:]] == [NOW, accepted_at]


def test_a_move_the_playbook_does_not_allow_is_refused_and_changes_nothing(store: Store) -> None:
    _ann(store)
    before = store.snapshot()

    with pytest.raises(MoveNotAllowed, match="cannot move to 'customer'"):
        store.move("ann@acme.io", "customer")
    with pytest.raises(UnknownStage):
        store.move("ann@acme.io", "won-big")
    with pytest.raises(LeadNotFound):
        store.move("nobody@acme.io", "mql")

    assert store.snapshot() == before


def test_a_hand_back_without_one_of_the_agreed_reasons_is_refused_and_changes_nothing(store: Store) -> None:
    _ann(store)
    store.move("ann@acme.io", "mql")
    before = store.snapshot()

    with pytest.raises(ReasonRequired):
        store.move("ann@acme.io", "recycled")
    with pytest.raises(ReasonRequired):
        store.move("ann@acme.io", "recycled", reason="we are busy")

    assert store.snapshot() == before


# --- merges --------------------------------------------------------------------------------


def _two_leads_of_one_person(store: Store) -> None:
    store.send(
        identify("w-1", AT, user_id="u-ann", email="ann@acme.io", industry="software", company_size=500),
        page("w-2", AT, "/pricing", user_id="u-ann"),
        identify("p-1", AT, anonymous_id="visitor-ann", email="ann.smith@gmail.com", title="VP Sales", phone="+1 555 0100"),
        track("p-2", AT, "download", anonymous_id="visitor-ann"),
    )


def test_a_merged_leads_events_identities_and_fields_follow_it_into_the_lead_that_stays(store: Store) -> None:
    _two_leads_of_one_person(store)
    work = store.lead("ann@acme.io")
    assert work.fit == 45  # software + mid-market; no title yet

    kept = lead_service.merge_leads(store.uow(), store.playbook, "ann.smith@gmail.com", "ann@acme.io", NOW)

    assert kept.id == work.id
    merged = store.lead("ann.smith@gmail.com")
    assert merged.merged_into == work.id
    work = store.lead("ann@acme.io")
    assert work.fields["title"] == "VP Sales" and work.fields["phone"] == "+1 555 0100"  # gaps filled
    assert work.fit == 70
    assert store.view("ann@acme.io", now=NOW).engagement == pytest.approx(21 * 2 ** (-3 / (24 * 30)))
    assert {row["message_id"]: row["lead_id"] for row in store.rows(tables.events)} == dict.fromkeys(
        ["w-1", "w-2", "p-1", "p-2"], work.id
    )
    assert {(row["kind"], row["value"]): row["lead_id"] for row in store.rows(tables.identities)} == {
        ("user", "u-ann"): work.id, ("anonymous", "visitor-ann"): work.id,
    }
    with store.uow() as uow:
        assert uow.leads.count() == 1  # a merged-away lead is no longer counted
    # Looking up the merged-away email finds the lead that stays.
    assert store.view("ann.smith@gmail.com").lead.id == work.id


def test_events_after_a_merge_count_for_the_lead_that_stays(store: Store) -> None:
    _two_leads_of_one_person(store)
    lead_service.merge_leads(store.uow(), store.playbook, "ann.smith@gmail.com", "ann@acme.io", NOW)
    work = store.lead("ann@acme.io")
    before = store.view("ann@acme.io", now=NOW).engagement

    result = store.send(
        track("later-1", "2026-11-20T11:00:00Z", "webinar_attended", anonymous_id="visitor-ann"),
        identify("later-2", "2026-11-20T11:00:00Z", anonymous_id="visitor-ann", email="ann.smith@gmail.com",
                 name="Ann Smith"),
    )

    assert result.leads_created == 0
    assert {store.events_by_message()[m]["lead_id"] for m in ("later-1", "later-2")} == {work.id}
    assert store.lead("ann@acme.io").fields["name"] == "Ann Smith"
    assert store.view("ann@acme.io", now=NOW).engagement == pytest.approx(before + 20 * 2 ** (-1 / (24 * 60)))
    assert store.lead("ann.smith@gmail.com").fields.get("name") is None  # the merged-away row stays as it was


def test_a_lead_cannot_be_merged_into_itself_nor_merged_twice(store: Store) -> None:
    _two_leads_of_one_person(store)
    with pytest.raises(MergeNotAllowed):
        lead_service.merge_leads(store.uow(), store.playbook, "ann@acme.io", "ANN@acme.io", NOW)
    lead_service.merge_leads(store.uow(), store.playbook, "ann.smith@gmail.com", "ann@acme.io", NOW)
    before = store.snapshot()

    with pytest.raises(MergeNotAllowed):
        lead_service.merge_leads(store.uow(), store.playbook, "ann.smith@gmail.com", "ann@acme.io", NOW)

    assert store.snapshot() == before


# --- rescoring -----------------------------------------------------------------------------


def _changed_playbook():  # type: ignore[no-untyped-def]
    """Version 2 of the agreement: forms and target industries count more, MQL comes sooner."""
    text = default_playbook_text()
    changes = [
        ('version: "1"', 'version: "2"'),
        ('when: lead.industry in ["software", "fintech", "healthcare"]\n        points: 25',
         'when: lead.industry in ["software", "fintech", "healthcare"]\n        points: 30'),
        ("event: [form_submit, form_submitted]\n        points: 15", "event: [form_submit, form_submitted]\n        points: 30"),
        ("rule: fit >= 40 && engagement >= 40", "rule: fit >= 40 && engagement >= 35"),
    ]
    for old, new in changes:
        assert text.count(old) == 1, f"the default playbook no longer contains {old!r}"
        text = text.replace(old, new)
    return parse_playbook(text, "playbook-v2.yaml")


def test_rescoring_after_a_playbook_change_recomputes_every_leads_scores(store: Store) -> None:
    _ann(store)  # fit 70, engagement 26: a lead under version 1
    store.send(identify("bob-1", AT, user_id="u-bob", email="bob@beta.io", industry="fintech"),
               track("bob-2", AT, "form_submit", user_id="u-bob"))
    assert store.lead("ann@acme.io").stage == "lead"
    version_2 = _changed_playbook()

    rescored = lead_service.rescore_all(store.uow, version_2, NOW, chunk=1)  # one transaction per lead

    assert rescored == 2
    ann, bob = store.lead("ann@acme.io"), store.lead("bob@beta.io")
    assert (ann.fit, ann.fit_breakdown["target industry"]) == (75, 30)
    assert (bob.fit, bob.fit_breakdown) == (30, {"target industry": 30})
    store.playbook = version_2
    assert store.view("ann@acme.io", now=ann.engagement.as_of).engagement_breakdown == {
        "pricing page": 10, "page view": 1, "form": 30,
    }
    points = {m: row["points"] for m, row in store.events_by_message().items()}
    assert points == {"ann-1": 0, "ann-2": 11, "ann-3": 30, "bob-1": 0, "bob-2": 30}
    # Under version 2, Ann (fit 75, engagement ~41) qualifies; Bob (fit 30) does not.
    assert (ann.stage, bob.stage) == ("mql", "lead")
    assert store.history("ann@acme.io")[-1] == ("lead", "mql", "rule:mql", None)
    assert store.rows(tables.stage_changes)[-1]["at"] == NOW


def test_rescoring_twice_with_the_same_playbook_gives_the_same_scores(store: Store) -> None:
    _ann(store)
    lead_service.rescore_all(store.uow, store.playbook, NOW)
    first = store.lead("ann@acme.io")

    lead_service.rescore_all(store.uow, store.playbook, NOW)

    again = store.lead("ann@acme.io")
    assert (again.fit, again.fit_breakdown, again.stage) == (first.fit, first.fit_breakdown, first.stage)
    assert again.engagement.total == pytest.approx(first.engagement.total)
    assert store.history("ann@acme.io") == [(None, "lead", "created", None)]


def test_rescoring_keeps_the_stages_leads_have_reached(store: Store) -> None:
    _ann(store)
    store.move("ann@acme.io", "sal")
    stricter = parse_playbook(
        default_playbook_text().replace("rule: fit >= 40 && engagement >= 40", "rule: fit >= 95 && engagement >= 95")
    )

    lead_service.rescore_all(store.uow, stricter, NOW)

    lead = store.lead("ann@acme.io")
    assert (lead.stage, lead.highest_stage) == ("sal", "sal")

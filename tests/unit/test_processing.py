"""What happens to a lead when it does something: fields, scores, automatic moves; merge; rescore."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadrelay.domain.errors import MergeNotAllowed
from leadrelay.domain.lifecycle import move
from leadrelay.domain.model import Event
from leadrelay.domain.processing import apply_event, merge, new_lead, rescore, update_fields
from leadrelay.domain.scoring import engagement_at, engagement_breakdown

from .builders import T0, days, event, lead_in, small_playbook

# --- a new lead, its fields --------------------------------------------------------------------


def test_a_new_lead_enters_at_the_entry_stage_and_its_creation_opens_the_history(playbook):
    lead = new_lead("ada@acme.example", playbook, T0)

    assert (lead.stage, lead.highest_stage, lead.stage_entered_at, lead.created_at) == ("lead", "lead", T0, T0)
    [created] = lead.history
    assert (created.from_stage, created.to_stage, created.at, created.by) == (None, "lead", T0, "created")


def test_fit_rules_on_the_email_address_count_for_a_lead_that_gave_nothing_else():
    playbook = small_playbook("""
scoring:
  fit:
    rules:
      - name: target account
        when: lead.email_domain == "bigco.example"
        points: 50
""")
    lead = new_lead("ada@bigco.example", playbook, T0)

    apply_event(lead, event("page_view", T0, email="ada@bigco.example", type="page"), playbook)

    assert lead.fit == 50
    assert lead.fit_breakdown == {"target account": 50}


def test_new_field_values_are_kept_and_rescore_fit(playbook):
    lead = lead_in(playbook, industry="retail")
    assert lead.fit == 0

    changed = update_fields(lead, {"industry": "software", "company_size": 250}, playbook, days(1))

    assert changed is True
    assert lead.fields == {"industry": "software", "company_size": 250}
    assert lead.fit == 45


def test_the_same_values_again_are_no_change(playbook):
    lead = lead_in(playbook, industry="software")

    assert update_fields(lead, {"industry": "software"}, playbook, days(1)) is False


def test_empty_values_never_erase_known_fields(playbook):
    lead = lead_in(playbook, title="Chief Revenue Officer", industry="software")

    changed = update_fields(lead, {"title": None, "industry": None}, playbook, days(1))

    assert changed is False
    assert lead.fields == {"title": "Chief Revenue Officer", "industry": "software"}
    assert lead.fit == 50


def test_blank_text_never_erases_a_known_field(playbook):
    lead = lead_in(playbook, title="Chief Revenue Officer")

    update_fields(lead, {"title": ""}, playbook, days(1))

    assert lead.fields["title"] == "Chief Revenue Officer"
    assert lead.fit == 25


# --- applying an event --------------------------------------------------------------------------


def test_an_event_is_tied_to_its_lead_and_keeps_the_points_it_earned(playbook):
    lead = lead_in(playbook)
    form = event("form_submit", days(1))

    apply_event(lead, form, playbook)

    assert form.lead is lead
    assert form.points == 15
    assert lead.engagement.as_of == days(1)


def test_traits_on_an_event_fill_the_leads_fields_and_fit(playbook):
    lead = lead_in(playbook)

    apply_event(lead, event("identify", days(1), type="identify",
                            traits={"title": "Director of Sales", "company_size": 40}), playbook)

    assert lead.fields == {"title": "Director of Sales", "company_size": 40}
    assert lead.fit == 25 + 10


def test_a_late_event_does_not_qualify_a_lead_on_engagement_it_never_had(playbook):
    """Fit 70; a form on day 0 (15) and a webinar on day 30 (20): engagement was 15 on day 0 and
    7.5 + 20 = 27.5 on day 30, never 40. Whatever order the two arrive in, the lead is no MQL."""
    fields = {"industry": "software", "company_size": 500, "title": "VP Sales"}
    in_order = lead_in(playbook, **fields)
    for one in (event("form_submit", T0), event("webinar_attended", days(30))):
        apply_event(in_order, one, playbook)

    late = lead_in(playbook, **fields)
    for one in (event("webinar_attended", days(30)), event("form_submit", T0)):  # the form arrives late
        apply_event(late, one, playbook)

    assert engagement_at(late.engagement, playbook.scoring, days(30)) == pytest.approx(27.5)
    assert in_order.stage == "lead"
    assert late.stage == "lead"


# --- merge -------------------------------------------------------------------------------------


def two_people(playbook):
    """The same person twice: a work address and a private one, with their own histories."""
    work = lead_in(playbook, "ada@acme.example", T0, company="Acme", industry="software")
    work.id = 1
    apply_event(work, event("form_submit", T0), playbook)
    apply_event(work, event("page_view", days(2), properties={"path": "/pricing"}), playbook)

    home = lead_in(playbook, "ada@gmail.com", days(-3), company="Ada's garage", title="Founder")
    home.id = 2
    apply_event(home, event("download", days(5), email="ada@gmail.com"), playbook)
    apply_event(home, event("webinar_attended", days(10), email="ada@gmail.com"), playbook)
    return work, home


def test_merge_fills_missing_fields_but_keeps_known_ones(playbook):
    work, home = two_people(playbook)

    merge(work, home, playbook, days(20))

    assert work.fields == {"company": "Acme", "industry": "software", "title": "Founder"}
    assert work.fit == 25 + 25  # target industry, decision maker: fit is rescored
    assert work.email == "ada@acme.example"


@pytest.mark.parametrize("into_work", [True, False], ids=["into the earlier scored", "into the later scored"])
def test_merged_engagement_is_exactly_the_sum_of_both_leads(playbook, into_work):
    work, home = two_people(playbook)
    target, source = (work, home) if into_work else (home, work)
    moments = [days(10), days(20), days(75)]
    expected = [engagement_at(work.engagement, playbook.scoring, at) + engagement_at(home.engagement, playbook.scoring, at)
                for at in moments]
    parts = {**engagement_breakdown(work.engagement, playbook.scoring, days(40)),
             **engagement_breakdown(home.engagement, playbook.scoring, days(40))}

    merge(target, source, playbook, days(20))

    assert [engagement_at(target.engagement, playbook.scoring, at) for at in moments] == pytest.approx(expected, rel=1e-12)
    assert engagement_breakdown(target.engagement, playbook.scoring, days(40)) == pytest.approx(parts)


def test_merge_keeps_the_targets_stage_and_the_higher_highest_stage(playbook):
    work, home = two_people(playbook)
    for n, stage in enumerate(("mql", "sal", "sql"), start=11):
        move(home, stage, playbook=playbook, at=days(n), by="sales:kim")
    move(home, "recycled", playbook=playbook, at=days(15), by="sales:kim", reason="no response")

    merge(work, home, playbook, days(20))

    assert (work.stage, work.highest_stage) == ("lead", "sql")


def test_merging_a_less_advanced_lead_never_lowers_the_highest_stage(playbook):
    work, home = two_people(playbook)
    move(work, "sal", playbook=playbook, at=days(3), by="sales:kim")

    merge(work, home, playbook, days(20))

    assert (work.stage, work.highest_stage) == ("sal", "sal")


def test_a_merged_lead_was_created_when_the_earlier_of_the_two_was(playbook):
    work, home = two_people(playbook)

    merge(work, home, playbook, days(20))

    assert work.created_at == days(-3)
    assert home.merged_into == work.id


def test_a_merged_lead_gets_no_more_from_a_rule_than_its_total_cap(playbook):
    work, home = two_people(playbook)
    for lead in (work, home):
        for d in range(4):
            for m in range(3):
                apply_event(lead, event("email_open", days(30 + d) + timedelta(minutes=m), email=lead.email), playbook)
    assert lead.engagement.rules["email open"].awarded == 12

    merge(work, home, playbook, days(40))
    late_open = event("email_open", days(41))
    apply_event(work, late_open, playbook)

    assert late_open.points == 0


def test_a_lead_cannot_be_merged_into_itself(playbook):
    work, _ = two_people(playbook)
    twin = lead_in(playbook, "ada@acme.example")
    twin.id = work.id

    with pytest.raises(MergeNotAllowed, match="itself"):
        merge(work, work, playbook, days(20))
    with pytest.raises(MergeNotAllowed, match="itself"):
        merge(work, twin, playbook, days(20))


def test_a_lead_merged_away_cannot_be_merged_again(playbook):
    work, home = two_people(playbook)
    merge(work, home, playbook, days(20))
    other = lead_in(playbook, "ada@other.example")
    other.id = 3

    with pytest.raises(MergeNotAllowed, match="merged away"):
        merge(other, home, playbook, days(21))
    with pytest.raises(MergeNotAllowed, match="merged away"):
        merge(home, other, playbook, days(21))


# --- rescore -------------------------------------------------------------------------------------


def history(playbook):
    lead = lead_in(playbook, industry="software", company_size=500)  # fit 45
    events = [event("form_submit", T0), event("download", days(3)), event("page_view", days(4), properties={"path": "/blog"})]
    for one in events:
        apply_event(lead, one, playbook)
    return lead, events


GENEROUS = """
scoring:
  fit:
    rules:
      - name: software
        when: lead.industry == "software"
        points: 60
  engagement:
    rules:
      - name: form
        event: form_submit
        points: 30
      - name: download
        event: download
        points: 20
"""


def test_rescoring_under_the_same_playbook_changes_no_score(playbook):
    lead, events = history(playbook)
    fit_before, breakdown_before = lead.fit_breakdown, engagement_breakdown(lead.engagement, playbook.scoring, days(10))

    rescore(lead, list(reversed(events)), playbook, days(10))

    assert lead.fit_breakdown == fit_before
    assert engagement_breakdown(lead.engagement, playbook.scoring, days(10)) == pytest.approx(breakdown_before)


def test_rescore_applies_the_new_playbooks_points_to_the_whole_history(playbook):
    lead, events = history(playbook)
    new = small_playbook(GENEROUS, mql_rule="fit >= 100")

    rescore(lead, events, new, days(10))

    assert lead.fit_breakdown == {"software": 60}
    assert engagement_breakdown(lead.engagement, new.scoring, days(30)) == pytest.approx(
        {"form": 15, "download": 20 * 2 ** (-27 / 30)}, abs=1e-4)
    assert [one.points for one in events] == [30, 20, 0]


def test_rescore_can_qualify_a_lead_under_a_looser_mql_rule(playbook):
    lead, events = history(playbook)
    assert lead.stage == "lead"
    new = small_playbook(GENEROUS, mql_rule="fit >= 40 && engagement >= 20")

    rescore(lead, events, new, days(10))

    assert lead.stage == "mql"
    assert (lead.history[-1].by, lead.history[-1].at) == ("rule:mql", days(10))


def test_rescore_never_takes_back_a_stage_already_reached(playbook):
    lead, events = history(playbook)
    move(lead, "mql", playbook=playbook, at=days(5), by="marketing:ann")
    stingy = small_playbook("scoring: {}", mql_rule="fit >= 100")

    rescore(lead, events, stingy, days(10))

    assert (lead.fit, engagement_at(lead.engagement, stingy.scoring, days(10))) == (0, 0)
    assert (lead.stage, lead.highest_stage) == ("mql", "mql")


def test_a_leads_first_and_last_touch_do_not_depend_on_the_order_events_arrive_in(playbook):
    start = T0
    visits = [
        Event(f"m{day}", "page", "page_view", start + timedelta(days=day), user_id="u",
              touch={"source": source, "medium": "cpc"})
        for day, source in ((0, "google"), (3, "bing"), (1, "linkedin"))
    ]
    orders = []
    for order in (visits, list(reversed(visits))):
        lead = new_lead("ada@acme.example", playbook, start)
        for visit in order:
            apply_event(lead, visit, playbook)
        orders.append((lead.first_touch["source"], lead.last_touch["source"], lead.source))

    assert orders == [("google", "bing", "google")] * 2

"""Fit (who the lead is) and engagement (what it did), kept apart, capped, and fading with time."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from leadrelay.domain.lifecycle import RuleContext
from leadrelay.domain.model import Engagement
from leadrelay.domain.processing import apply_event, new_lead
from leadrelay.domain.scoring import compute_fit, decay_factor, engagement_at, engagement_breakdown

from .builders import T0, days, event, lead_in, small_playbook


def engaged(playbook, *events, lead=None):
    """A lead after the given events (applied in the order given)."""
    lead = lead or new_lead("ada@acme.example", playbook, T0)
    for one in events:
        apply_event(lead, one, playbook)
    return lead


def score_at(lead, playbook, at):
    return engagement_at(lead.engagement, playbook.scoring, at)


def awarded(lead, rule):
    return lead.engagement.rules[rule].awarded if rule in lead.engagement.rules else 0.0


# --- fit ------------------------------------------------------------------------------------


def test_fit_adds_the_points_of_every_rule_the_lead_matches(playbook):
    lead = lead_in(playbook, industry="fintech", company_size=350, title="VP Marketing", timeframe="now")

    assert lead.fit_breakdown == {
        "target industry": 25, "mid-market or larger": 20, "decision maker": 25, "buying soon": 15,
    }
    assert lead.fit == 85


def test_a_lead_nobody_knows_anything_about_has_no_fit(playbook):
    lead = lead_in(playbook)

    compute_fit(lead, playbook.scoring, RuleContext(lead, playbook, T0))

    assert (lead.fit, lead.fit_breakdown) == (0, {})


def test_fit_never_exceeds_the_playbook_cap_but_the_breakdown_shows_every_rule():
    playbook = small_playbook("""
scoring:
  fit:
    max: 50
    rules:
      - name: software
        when: lead.industry == "software"
        points: 30
      - name: big
        when: lead.company_size >= 1000
        points: 30
""")
    lead = lead_in(playbook, industry="software", company_size=5000)

    assert lead.fit == 50
    assert lead.fit_breakdown == {"software": 30, "big": 30}


def test_fit_is_never_negative(playbook):
    lead = lead_in(playbook, email="ada@gmail.com", country="DE")

    assert lead.fit_breakdown == {"free-mail address": -15}
    assert lead.fit == 0


def test_negative_fit_points_lower_the_fit(playbook):
    lead = lead_in(playbook, email="ada@gmail.com", industry="software", company_size=30)

    assert lead.fit == 25 + 10 - 15


# --- engagement rules -------------------------------------------------------------------------


def test_a_pricing_page_view_earns_the_pricing_rule_on_top_of_the_page_view(playbook):
    lead = engaged(playbook, event("page_view", T0, properties={"path": "/pricing/enterprise"}))

    assert engagement_breakdown(lead.engagement, playbook.scoring, T0) == {"pricing page": 10, "page view": 1}
    assert lead.engagement.total == 11


def test_an_ordinary_page_view_earns_only_the_page_view_point(playbook):
    lead = engaged(playbook, event("page_view", T0, properties={"path": "/blog/alignment"}))

    assert engagement_breakdown(lead.engagement, playbook.scoring, T0) == {"page view": 1}


def test_the_points_an_event_earned_are_kept_on_the_event(playbook):
    view = event("page_view", T0, properties={"path": "/pricing"})

    engaged(playbook, view)

    assert view.points == 11


def test_events_no_rule_mentions_earn_nothing(playbook):
    lead = engaged(playbook, event("newsletter_bounce", T0))

    assert score_at(lead, playbook, T0) == 0
    assert lead.engagement.rules == {}


def test_careers_page_views_lower_engagement(playbook):
    lead = engaged(playbook, event("form_submit", T0), event("page_view", T0, properties={"path": "/careers/sales"}))

    assert score_at(lead, playbook, T0) == 15 + 1 - 10


def test_engagement_is_never_negative(playbook):
    unsubscribe = event("unsubscribe", T0)
    lead = engaged(playbook, event("email_click", T0), unsubscribe)

    assert score_at(lead, playbook, T0) == 0
    assert score_at(lead, playbook, days(45)) == 0
    assert unsubscribe.points == -5  # it could only take away what there was


def test_points_beyond_the_daily_cap_are_not_awarded(playbook):
    opens = [event("email_open", T0 + timedelta(hours=h)) for h in range(5)]

    lead = engaged(playbook, *opens)

    assert awarded(lead, "email open") == 3
    assert [one.points for one in opens] == [1, 1, 1, 0, 0]


def test_the_last_points_under_a_daily_cap_are_given_in_part():
    playbook = small_playbook("""
scoring:
  engagement:
    rules:
      - name: open
        event: email_open
        points: 4
        per_day: 10
""")
    opens = [event("email_open", T0 + timedelta(minutes=m)) for m in range(4)]

    engaged(playbook, *opens)

    assert [one.points for one in opens] == pytest.approx([4, 4, 2, 0])


def test_the_daily_cap_starts_afresh_the_next_day(playbook):
    lead = engaged(playbook, *[event("email_open", days(d) + timedelta(minutes=m)) for d in (0, 1) for m in range(5)])

    assert awarded(lead, "email open") == 6


@pytest.mark.parametrize(
    "first, second, points",
    [
        # 23:00 and 01:00 UTC are two UTC days but one New York day (18:00 and 20:00)
        ("2026-03-02T23:00:00+00:00", "2026-03-03T01:00:00+00:00", 10),
        # 03:00 and 20:00 UTC are one UTC day but two New York days (22:00 the day before, 15:00)
        ("2026-03-03T03:00:00+00:00", "2026-03-03T20:00:00+00:00", 20),
    ],
)
def test_daily_cap_counts_days_in_the_playbook_time_zone(first, second, points):
    playbook = small_playbook("""
scoring:
  engagement:
    rules:
      - name: click
        event: email_click
        points: 10
        per_day: 10
""", timezone="America/New_York")

    lead = engaged(playbook, event("email_click", datetime.fromisoformat(first)),
                   event("email_click", datetime.fromisoformat(second)))

    assert awarded(lead, "click") == points


def test_late_events_respect_the_daily_cap_of_their_own_day(playbook):
    """An event that arrives late still counts against the cap of the day it happened on."""
    lead = engaged(
        playbook,
        event("email_open", days(1)),  # tomorrow's open arrives first
        *[event("email_open", T0 + timedelta(minutes=m)) for m in range(5)],  # then five opens of today
    )

    assert awarded(lead, "email open") == 1 + 3


def test_a_rule_never_gives_more_than_its_total_cap(playbook):
    opens = [event("email_open", days(d) + timedelta(minutes=m)) for d in range(10) for m in range(3)]

    lead = engaged(playbook, *opens)

    assert awarded(lead, "email open") == 15
    assert sum(one.points for one in opens) == 15


def test_engagement_never_exceeds_the_score_cap(playbook):
    webinars = [event("webinar_attended", T0) for _ in range(6)]

    lead = engaged(playbook, *webinars)

    assert score_at(lead, playbook, T0) == 100
    assert webinars[-1].points == 0


def test_a_capped_score_has_room_again_once_it_has_faded(playbook):
    lead = engaged(playbook, *[event("form_submit", T0) for _ in range(8)])
    assert score_at(lead, playbook, T0) == 100

    form = event("form_submit", days(30))
    engaged(playbook, form, lead=lead)

    assert form.points == 15
    assert score_at(lead, playbook, days(30)) == pytest.approx(50 + 15)


# --- decay ------------------------------------------------------------------------------------


def test_a_point_is_worth_half_a_point_after_one_half_life():
    assert decay_factor(30 * 86400, 30) == 0.5
    assert decay_factor(0, 30) == 1


def test_engagement_halves_after_one_half_life(playbook):
    lead = engaged(playbook, event("form_submit", T0))

    assert score_at(lead, playbook, days(30)) == pytest.approx(7.5, abs=1e-12)
    assert score_at(lead, playbook, days(60)) == pytest.approx(3.75, abs=1e-12)


def test_engagement_decays_exactly_between_half_lives(playbook):
    lead = engaged(playbook, event("form_submit", T0))

    assert score_at(lead, playbook, days(10)) == pytest.approx(15 * 2 ** (-10 / 30), rel=1e-12)
    assert score_at(lead, playbook, T0 + timedelta(hours=1)) == pytest.approx(15 * 2 ** (-1 / 720), rel=1e-12)


def test_webinars_fade_on_their_own_half_life(playbook):
    lead = engaged(playbook, event("webinar_attended", T0), event("form_submit", T0))

    breakdown = engagement_breakdown(lead.engagement, playbook.scoring, days(60))

    assert breakdown == {"webinar attended": 10, "form": 3.75}
    assert score_at(lead, playbook, days(60)) == pytest.approx(13.75)


def test_storing_the_score_at_a_later_moment_loses_nothing(playbook):
    """Points earned after a pause add to the faded score: 15 / 2 + 10."""
    lead = engaged(playbook, event("form_submit", T0), event("download", days(30)))

    assert lead.engagement.as_of == days(30)
    assert score_at(lead, playbook, days(30)) == pytest.approx(17.5)
    assert score_at(lead, playbook, days(60)) == pytest.approx(8.75)


def test_a_lead_that_did_nothing_has_no_engagement(playbook):
    assert engagement_at(Engagement(), playbook.scoring, T0) == 0


# --- order ------------------------------------------------------------------------------------


def test_late_event_scores_the_same_as_in_order(playbook):
    def happened():
        return [event("form_submit", T0), event("download", days(10)), event("webinar_attended", days(40)),
                event("page_view", days(41), properties={"path": "/pricing"}),
                event("email_click", days(41))]

    in_order = engaged(playbook, *happened())
    expected = engagement_breakdown(in_order.engagement, playbook.scoring, days(50))
    assert set(expected) == {"form", "content download", "webinar attended", "page view", "pricing page", "email click"}

    for order in itertools.permutations(range(5)):
        events = happened()
        lead = engaged(playbook, *[events[i] for i in order])
        assert score_at(lead, playbook, days(50)) == pytest.approx(score_at(in_order, playbook, days(50))), order
        assert engagement_breakdown(lead.engagement, playbook.scoring, days(50)) == pytest.approx(expected), order


def test_a_late_event_counts_from_when_it_happened_not_when_it_arrived(playbook):
    late_form = event("form_submit", T0)
    lead = engaged(playbook, event("download", days(30)), late_form)

    assert late_form.points == 15
    assert score_at(lead, playbook, days(30)) == pytest.approx(10 + 7.5)

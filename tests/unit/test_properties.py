"""Properties that hold for any input: the funnel table, exact decay, and order independence."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.domain.errors import DomainError
from leadrelay.domain.lifecycle import move
from leadrelay.domain.playbook import EngagementRule
from leadrelay.domain.processing import apply_event, new_lead
from leadrelay.domain.scoring import engagement_at, engagement_breakdown

from .builders import DEFAULT_PLAYBOOK, T0, Rule, engagement_playbook, event

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY_SECONDS = 86400

# --- (a) the funnel ---------------------------------------------------------------------------

PLAYBOOK = DEFAULT_PLAYBOOK
ANY_STAGE = st.sampled_from([*PLAYBOOK.stages, "nowhere"])
ANY_REASON = st.one_of(st.none(), st.just("because"), st.sampled_from((*PLAYBOOK.hand_back_reasons, *PLAYBOOK.disqualify_reasons)))


def attempt(data, stage):
    """Someone tries to move a lead in `stage`: mostly along the table (so that long paths
    through the funnel and back are common), sometimes anywhere, with a right, wrong or no reason."""
    allowed = PLAYBOOK.stages[stage].moves
    to_stage = data.draw(st.sampled_from(allowed) if allowed and data.draw(st.integers(0, 3)) else ANY_STAGE)
    right = PLAYBOOK.reasons_for(to_stage) if to_stage in PLAYBOOK.stages else ()
    reason = data.draw(st.sampled_from(right) if right and data.draw(st.integers(0, 3)) else ANY_REASON)
    hours = data.draw(st.integers(min_value=-72, max_value=500))  # clocks disagree: sometimes earlier
    return to_stage, reason, hours


@BOUNDED
@given(steps=st.integers(min_value=0, max_value=40), data=st.data())
def test_no_sequence_of_moves_leaves_the_playbooks_table_or_breaks_the_history(steps, data):
    lead = new_lead("ada@acme.example", PLAYBOOK, T0)
    at = T0
    highest_ranks = [PLAYBOOK.rank(lead.highest_stage)]
    for _ in range(steps):
        to_stage, reason, hours = attempt(data, lead.stage)
        at += timedelta(hours=hours)
        before = lead.stage
        try:
            change = move(lead, to_stage, playbook=PLAYBOOK, at=at, by="someone", reason=reason)
        except DomainError:
            assert lead.stage == before  # refused: nothing changed
        else:
            assert PLAYBOOK.allows(before, to_stage)
            required = PLAYBOOK.reasons_for(to_stage)
            assert not required or change.reason in required
        highest_ranks.append(PLAYBOOK.rank(lead.highest_stage))

    history = lead.history
    assert history[0].from_stage is None and history[0].to_stage == PLAYBOOK.entry_stage
    for previous, change in zip(history, history[1:]):
        assert change.from_stage == previous.to_stage
        assert (change.from_stage, change.to_stage) in PLAYBOOK.moves
        assert change.at >= previous.at
    assert history[-1].to_stage == lead.stage
    assert history[-1].at == lead.stage_entered_at
    assert highest_ranks == sorted(highest_ranks)  # the highest stage reached never goes down
    assert PLAYBOOK.rank(lead.highest_stage) == max(PLAYBOOK.rank(change.to_stage) for change in history)


# --- (b) decay ----------------------------------------------------------------------------------

points = st.floats(min_value=-50, max_value=50, allow_nan=False).filter(lambda p: abs(p) >= 0.01)
moments = st.integers(min_value=0, max_value=365 * DAY_SECONDS)  # seconds after T0


@BOUNDED
@given(
    rule_points=st.lists(points, min_size=1, max_size=4),
    half_life=st.floats(min_value=0.5, max_value=120),
    cap=st.floats(min_value=10, max_value=1e6),
    happened=st.lists(st.tuples(st.integers(min_value=0, max_value=3), moments), min_size=1, max_size=30),
    fraction=st.floats(min_value=0, max_value=3),
)
def test_engagement_decays_exactly_by_its_half_life_and_is_never_negative(rule_points, half_life, cap, happened, fraction):
    rules = [EngagementRule(f"rule {i}", frozenset({f"event_{i}"}), p, half_life) for i, p in enumerate(rule_points)]
    playbook = engagement_playbook(*rules, engagement_max=cap, half_life_days=half_life)
    lead = new_lead("ada@acme.example", playbook, T0)

    for index, seconds in happened:  # in arrival order: late events included
        name = f"event_{index % len(rules)}"
        apply_event(lead, event(name, T0 + timedelta(seconds=seconds)), playbook)
        if lead.engagement.as_of is not None:
            for later in (0, 1, 10, 100):
                score = engagement_at(lead.engagement, playbook.scoring, lead.engagement.as_of + timedelta(days=later))
                assert 0 <= score <= cap

    if lead.engagement.as_of is None:
        return
    start = lead.engagement.as_of
    value = engagement_at(lead.engagement, playbook.scoring, start)
    for k in range(1, 5):
        after = engagement_at(lead.engagement, playbook.scoring, start + timedelta(days=k * half_life))
        assert math.isclose(after, value / 2**k, rel_tol=1e-9, abs_tol=1e-9)
    between = engagement_at(lead.engagement, playbook.scoring, start + timedelta(days=fraction * half_life))
    assert math.isclose(between, value * 2**-fraction, rel_tol=1e-9, abs_tol=1e-9)


@BOUNDED
@given(
    half_lives=st.lists(st.floats(min_value=0.5, max_value=120), min_size=1, max_size=4),
    happened=st.lists(st.tuples(st.integers(min_value=0, max_value=3), moments), min_size=1, max_size=20),
)
def test_each_rule_fades_by_its_own_half_life(half_lives, happened):
    rules = [EngagementRule(f"rule {i}", frozenset({"visit"}), 10.0, h) for i, h in enumerate(half_lives)]
    playbook = engagement_playbook(*rules, half_life_days=30)
    lead = new_lead("ada@acme.example", playbook, T0)
    for _, seconds in happened:
        apply_event(lead, event("visit", T0 + timedelta(seconds=seconds)), playbook)

    start = lead.engagement.as_of
    now = engagement_breakdown(lead.engagement, playbook.scoring, start)
    for rule in rules:
        later = engagement_breakdown(lead.engagement, playbook.scoring, start + timedelta(days=rule.half_life_days))
        assert math.isclose(later[rule.name], now[rule.name] / 2, abs_tol=1e-4)


# --- (c) order independence -------------------------------------------------------------------

PRICING = Rule(lambda context: str(context["properties"].get("path", "")).startswith("/pricing"), "properties",
               source='properties.path.startsWith("/pricing")')
UNCAPPED = engagement_playbook(
    EngagementRule("form", frozenset({"form_submit"}), 15, 30),
    EngagementRule("webinar", frozenset({"webinar_attended"}), 20, 60),
    EngagementRule("page view", frozenset({"page_view"}), 1, 7),
    EngagementRule("pricing page", frozenset({"page_view"}), 10, 14, when=PRICING),
    EngagementRule("click", frozenset({"email_click"}), 2.5, 21),
)
happenings = st.lists(
    st.tuples(
        st.sampled_from(["form_submit", "webinar_attended", "page_view", "email_click", "unknown_thing"]),
        st.sampled_from(["/", "/pricing", "/pricing/team", "/blog"]),
        moments,
    ),
    min_size=1,
    max_size=25,
)


@BOUNDED
@given(happened=happenings, data=st.data())
def test_scores_depend_only_on_which_events_happened_not_on_their_arrival_order(happened, data):
    order = data.draw(st.permutations(range(len(happened))), label="arrival order")

    def score(arrival):
        lead = new_lead("ada@acme.example", UNCAPPED, T0)
        events = [event(name, T0 + timedelta(seconds=s), properties={"path": path}) for name, path, s in happened]
        for i in arrival:
            apply_event(lead, events[i], UNCAPPED)
        return lead, [one.points for one in events]

    in_time_order, points_in_order = score(sorted(range(len(happened)), key=lambda i: happened[i][2]))
    shuffled, points_shuffled = score(order)

    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) for a, b in zip(points_shuffled, points_in_order))
    end = T0 + timedelta(days=400)
    assert math.isclose(engagement_at(shuffled.engagement, UNCAPPED.scoring, end),
                        engagement_at(in_time_order.engagement, UNCAPPED.scoring, end), rel_tol=1e-9, abs_tol=1e-9)
    for name, part in engagement_breakdown(in_time_order.engagement, UNCAPPED.scoring, end).items():
        assert math.isclose(engagement_breakdown(shuffled.engagement, UNCAPPED.scoring, end)[name], part, abs_tol=2e-4)

"""Fit and engagement scores, kept apart, each with the breakdown that explains it.

Engagement decays exponentially with a half-life, so a score is stored as values at one
moment and brought to any other moment in O(1):  s(t) = s(t0) · 2^(−(t − t0) / half_life).
Because decay is linear, points from an event that arrives late are decayed from the
event's own time to the stored moment and added: the order events arrive in does not
change the score (caps aside, which count in arrival order).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from leadrelay.domain.model import Engagement, Event, Lead, RuleScore
from leadrelay.domain.playbook import EngagementRule, Scoring

SECONDS_PER_DAY = 86400.0


def decay_factor(seconds: float, half_life_days: float) -> float:
    """How much of a score is left after `seconds` (negative seconds go back in time)."""
    return 2.0 ** (-seconds / (half_life_days * SECONDS_PER_DAY))


def _half_life(scoring: Scoring, rule_name: str) -> float:
    rule = scoring.rule_named.get(rule_name)
    return scoring.half_life_days if rule is None else rule.half_life_days


def engagement_at(engagement: Engagement, scoring: Scoring, at: datetime) -> float:
    """The engagement score at `at`: decayed from the stored moment, within [0, cap]."""
    if engagement.as_of is None:
        return 0.0
    if at == engagement.as_of:
        total = engagement.total
    else:
        seconds = (at - engagement.as_of).total_seconds()
        total = 0.0
        for name, score in engagement.rules.items():
            if score.value:
                total += score.value * decay_factor(seconds, _half_life(scoring, name))
    return min(max(total, 0.0), scoring.engagement_max)


def engagement_breakdown(engagement: Engagement, scoring: Scoring, at: datetime) -> dict[str, float]:
    """Each engagement rule's share of the score at `at`."""
    if engagement.as_of is None:
        return {}
    seconds = (at - engagement.as_of).total_seconds()
    return {
        name: round(score.value * decay_factor(seconds, _half_life(scoring, name)), 4)
        for name, score in engagement.rules.items()
        if score.value
    }


def bring_forward(engagement: Engagement, scoring: Scoring, at: datetime) -> None:
    """Move the stored moment to `at` if `at` is later; earlier moments change nothing."""
    if engagement.as_of is None:
        engagement.as_of = at
        return
    seconds = (at - engagement.as_of).total_seconds()
    if seconds <= 0:
        return
    factors: dict[float, float] = {}  # most rules share the playbook's half-life
    total = 0.0
    for name, score in engagement.rules.items():
        if score.value:
            half_life = _half_life(scoring, name)
            factor = factors.get(half_life)
            if factor is None:
                factor = factors[half_life] = decay_factor(seconds, half_life)
            score.value *= factor
            total += score.value
    engagement.as_of = at
    engagement.total = total


def _within_cap(points: float, used: float, cap: float | None) -> float:
    """Points left under a cap on magnitude (caps bound negative rules the same way)."""
    if cap is None:
        return points
    room = max(cap - abs(used), 0.0)
    return points if abs(points) <= room else (room if points > 0 else -room)


def _award_one(
    engagement: Engagement, scoring: Scoring, rule: EngagementRule, event: Event
) -> float:
    score = engagement.rules.get(rule.name)
    if score is None:
        score = engagement.rules[rule.name] = RuleScore()
    points = _within_cap(rule.points, score.awarded, rule.max_total)
    day = ""
    if rule.per_day is not None:
        day = event.timestamp.astimezone(scoring.day_zone).date().isoformat()
        points = _within_cap(points, score.days.get(day, 0.0), rule.per_day)
    if not points:
        return 0.0
    assert engagement.as_of is not None
    factor = decay_factor((engagement.as_of - event.timestamp).total_seconds(), rule.half_life_days)
    value = points * factor
    total = engagement.total
    if total + value > scoring.engagement_max:
        value = max(scoring.engagement_max - total, 0.0)
    elif total + value < 0.0:
        value = min(-total, 0.0)
    if not value:
        return 0.0
    points = value / factor
    score.value += value
    engagement.total += value
    score.awarded += points
    if day:
        _count_day(score, day, points)
    return points


DAYS_KEPT = 31  # per-day caps remember this many most recent days of each rule


def _count_day(score: RuleScore, day: str, points: float) -> None:
    days = score.days
    days[day] = days.get(day, 0.0) + points
    if len(days) > DAYS_KEPT:
        del days[min(days)]


def award(engagement: Engagement, scoring: Scoring, event: Event, context: Mapping[str, Any]) -> float:
    """Apply the engagement rules for one event; return the points it earned (undecayed)."""
    rules = scoring.rules_by_event.get(event.name)
    if not rules:
        return 0.0
    bring_forward(engagement, scoring, event.timestamp)
    earned = 0.0
    for rule in rules:
        if rule.when is not None and not rule.when(context):
            continue
        earned += _award_one(engagement, scoring, rule, event)
    return earned


def compute_fit(lead: Lead, scoring: Scoring, context: Mapping[str, Any]) -> None:
    """Recompute the fit score and its breakdown from the lead's fields."""
    breakdown: dict[str, float] = {}
    for rule in scoring.fit_rules:
        if rule.when(context):
            breakdown[rule.name] = breakdown.get(rule.name, 0.0) + rule.points
    lead.fit_breakdown = breakdown
    lead.fit = min(max(sum(breakdown.values()), 0.0), scoring.fit_max)

"""What happens to a lead when it does something: fields, scores, automatic moves."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from leadrelay.domain.errors import MergeNotAllowed
from leadrelay.domain.lifecycle import RuleContext, apply_rules
from leadrelay.domain.model import Engagement, Event, Lead, RuleScore, StageChange
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.scoring import award, bring_forward, compute_fit, decay_factor


def new_lead(email: str, playbook: Playbook, at: datetime) -> Lead:
    """A new lead enters the funnel at the entry stage; its creation opens the stage history."""
    lead = Lead(
        email=email,
        stage=playbook.entry_stage,
        highest_stage=playbook.entry_stage,
        stage_entered_at=at,
        created_at=at,
        dirty=True,
    )
    lead.history.append(StageChange(lead, None, playbook.entry_stage, at, "created"))
    compute_fit(lead, playbook.scoring, RuleContext(lead, playbook, at))  # the email alone may count
    apply_rules(lead, playbook, at)  # e.g. a competitor's domain is disqualified at once
    return lead


def update_fields(lead: Lead, values: dict[str, Any], playbook: Playbook, at: datetime) -> bool:
    """Take new field values (empty values never erase known ones); rescore fit if any changed."""
    changed = False
    for name, value in values.items():
        if value is not None and value != "" and lead.fields.get(name) != value:
            lead.fields[name] = value
            changed = True
    if changed:
        compute_fit(lead, playbook.scoring, RuleContext(lead, playbook, at))
        lead.dirty = True
    return changed


def apply_event(lead: Lead, event: Event, playbook: Playbook) -> None:
    """Count one event for a lead: its traits, its engagement points, then the automatic moves."""
    at = event.timestamp
    event.lead = lead
    fields_changed = bool(event.traits) and update_fields(lead, event.traits, playbook, at)
    context = RuleContext(lead, playbook, at, event)
    event.points = award(lead.engagement, playbook.scoring, event, context)
    if event.touch:
        lead.record_touch(event.touch, at)
    lead.dirty = True
    apply_rules(lead, playbook, at, event, fields_changed=fields_changed,
                scores_changed=bool(event.points) or fields_changed)


def rescore(lead: Lead, events: Iterable[Event], playbook: Playbook, now: datetime) -> None:
    """Recompute a lead's scores from its fields and its whole history under `playbook`,
    then let the automatic moves act at `now` (stages already reached are facts: kept)."""
    compute_fit(lead, playbook.scoring, RuleContext(lead, playbook, now))
    lead.engagement = Engagement()
    for event in events:
        event.points = award(lead.engagement, playbook.scoring, event, RuleContext(lead, playbook, event.timestamp, event))
    lead.dirty = True
    apply_rules(lead, playbook, now)


def merge(target: Lead, source: Lead, playbook: Playbook, at: datetime) -> None:
    """Fold `source` into `target`: fields fill gaps, engagement adds up exactly (decay is
    linear), the highest stage reached is the higher of the two; `target` keeps its stage."""
    if target is source or (target.id is not None and target.id == source.id):
        raise MergeNotAllowed("a lead cannot be merged into itself")
    if source.merged_into is not None or target.merged_into is not None:
        raise MergeNotAllowed("a lead that was merged away cannot be merged again")
    for name, value in source.fields.items():
        if value is not None and target.fields.get(name) is None:
            target.fields[name] = value
    compute_fit(target, playbook.scoring, RuleContext(target, playbook, at))
    _add_engagement(target.engagement, source.engagement, playbook)
    if playbook.rank(source.highest_stage) > playbook.rank(target.highest_stage):
        target.highest_stage = source.highest_stage
    target.created_at = min(target.created_at, source.created_at)
    for touch in (source.first_touch, source.last_touch):
        if touch:
            target.record_touch({k: v for k, v in touch.items() if k != "at"}, datetime.fromisoformat(touch["at"]))
    source.merged_into = target.id
    target.dirty = source.dirty = True


def _add_engagement(into: Engagement, other: Engagement, playbook: Playbook) -> None:
    if other.as_of is None:
        return
    if into.as_of is None or other.as_of > into.as_of:
        bring_forward(into, playbook.scoring, other.as_of)
    assert into.as_of is not None
    seconds = (into.as_of - other.as_of).total_seconds()
    for name, score in other.rules.items():
        rule = playbook.scoring.rule_named.get(name)
        half_life = playbook.scoring.half_life_days if rule is None else rule.half_life_days
        mine = into.rules.setdefault(name, RuleScore())
        value = score.value * decay_factor(seconds, half_life)
        mine.value += value
        mine.awarded += score.awarded
        into.total += value

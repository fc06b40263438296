"""The funnel: moves only as the playbook allows, each one recorded in the stage history.

`move` is the one function that checks a move against the playbook's table; the automatic
moves (disqualify, fast-track, MQL) are rules that call it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from leadrelay.domain.errors import MoveNotAllowed, ReasonRequired, UnknownStage
from leadrelay.domain.model import Event, Lead, StageChange
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.prediction import p_win
from leadrelay.domain.scoring import engagement_at


def move(
    lead: Lead,
    to_stage: str,
    *,
    playbook: Playbook,
    at: datetime,
    by: str,
    reason: str | None = None,
) -> StageChange:
    """Move a lead to `to_stage`, or raise a domain error that says why it may not go there."""
    if to_stage not in playbook.stages:
        known = ", ".join(playbook.stages)
        raise UnknownStage(f"there is no stage {to_stage!r} in the playbook (stages: {known})")
    if not playbook.allows(lead.stage, to_stage):
        allowed = ", ".join(playbook.stages[lead.stage].moves) or "none: it is a final stage"
        raise MoveNotAllowed(
            f"a lead in {lead.stage!r} cannot move to {to_stage!r} (allowed moves: {allowed})"
        )
    reasons = playbook.reasons_for(to_stage)
    if reasons and reason not in reasons:
        raise ReasonRequired(
            f"moving to {to_stage!r} needs one of these reasons: {', '.join(reasons)}"
            + ("" if reason is None else f" (got {reason!r})")
        )
    at = max(at, lead.stage_entered_at)  # history never runs backwards
    change = StageChange(lead, lead.stage, to_stage, at, by, reason)
    lead.stage = to_stage
    lead.stage_entered_at = at
    if playbook.rank(to_stage) > playbook.rank(lead.highest_stage):
        lead.highest_stage = to_stage
    lead.history.append(change)
    lead.dirty = True
    return change


class RuleContext(dict[str, Any]):
    """What playbook conditions can read, each value computed only when a rule asks for it."""

    __slots__ = ("lead", "playbook", "at", "event")

    def __init__(self, lead: Lead, playbook: Playbook, at: datetime, event: Event | None = None):
        super().__init__()
        self.lead, self.playbook, self.at, self.event = lead, playbook, at, event

    def __missing__(self, key: str) -> Any:
        factory = _VALUES.get(key)
        if factory is None or (self.event is None and key in _EVENT_VALUES):
            raise KeyError(key)
        value = self[key] = factory(self)
        return value


_EVENT_VALUES = frozenset({"event", "properties"})
_VALUES: dict[str, Callable[[RuleContext], Any]] = {
    "lead": lambda c: c.lead.context(),
    "fit": lambda c: c.lead.fit,
    # never earlier than the stored moment: going back would count points earned later
    "engagement": lambda c: engagement_at(
        c.lead.engagement, c.playbook.scoring, max(c.at, c.lead.engagement.as_of or c.at)
    ),
    "total": lambda c: c["fit"] + c["engagement"],
    "stage": lambda c: c.lead.stage,
    "p_win": lambda c: p_win(c.lead, c.playbook, c.at),  # KeyError without a model: the rule does not fire
    "event": lambda c: {"name": c.event.name, "type": c.event.type},
    "properties": lambda c: c.event.properties,
}
_FIELD_ONLY = frozenset({"lead", "stage"})


def apply_rules(
    lead: Lead,
    playbook: Playbook,
    at: datetime,
    event: Event | None = None,
    *,
    fields_changed: bool = True,
    scores_changed: bool = True,
) -> None:
    """The automatic moves, in order: disqualify, fast-track, then the MQL rule.

    Rules act on change: a disqualify rule that reads only who the lead is (its fields) is
    checked when those change, the MQL rule when a score or a field changed (time passing
    alone only lowers engagement, it never qualifies a lead).
    """
    context = RuleContext(lead, playbook, at, event)
    if playbook.allows(lead.stage, playbook.disqualify_stage):
        for rule in playbook.disqualify:
            if not fields_changed and rule.when.variables <= _FIELD_ONLY:
                continue
            if rule.when(context):
                move(lead, playbook.disqualify_stage, playbook=playbook, at=at,
                     by=f"rule:{rule.name}", reason=rule.reason)
                return
    for fast in playbook.fast_track:
        if playbook.allows(lead.stage, fast.to) and fast.when(context):
            move(lead, fast.to, playbook=playbook, at=at, by=f"fast_track:{fast.name}")
            return
    if scores_changed and playbook.allows(lead.stage, playbook.mql_stage) and playbook.mql_rule(context):
        move(lead, playbook.mql_stage, playbook=playbook, at=at, by="rule:mql")

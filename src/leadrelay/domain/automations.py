"""Automations: when something happens in the funnel, do what the playbook says.

Triggers are facts of one transaction (a stage entered or left, a score crossing a line, a deal
assigned, a hand-back); actions are data (a task, an email, a webhook, fields to set, a nurture sequence to enter). Matching
is pure: the service writes the resulting tasks and outbox items in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from leadrelay.domain.playbook import Condition

TRIGGERS: tuple[str, ...] = ("stage_entered", "stage_left", "score_crossed", "deal_assigned", "hand_back",
                             "sla_warning", "sla_breach")
Score = Literal["fit", "engagement", "total"]


class Template(Protocol):
    """A compiled text template (an email subject or body); missing values render empty."""

    source: str

    def __call__(self, context: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True, slots=True)
class TaskAction:
    title: str
    due_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class EmailAction:
    to: str  # "owner", "manager", or an email address
    subject: Template
    body: Template


@dataclass(frozen=True, slots=True)
class WebhookAction:
    event: str  # the event name webhook subscriptions receive


@dataclass(frozen=True, slots=True)
class SetAction:
    values: Mapping[str, Any]  # field -> value, already checked against the field's type


@dataclass(frozen=True, slots=True)
class EnrollAction:
    sequence: str  # the id of a nurture sequence the lead enters (if its rules allow)


Action = TaskAction | EmailAction | WebhookAction | SetAction | EnrollAction


@dataclass(frozen=True, slots=True)
class Automation:
    name: str
    on: str  # one of TRIGGERS
    actions: tuple[Action, ...]
    stage: str | None = None  # stage_entered / stage_left: which stage (None: any)
    score: Score = "total"  # score_crossed: which score
    above: float | None = None  # score_crossed: the line crossed upwards
    when: Condition | None = None  # an extra condition on the lead
    commitment: str | None = None  # sla_warning / sla_breach: which SLA commitment (None: any)

    def matches(self, happened: Happening, context: Mapping[str, Any]) -> bool:
        if happened.trigger != self.on:
            return False
        if self.commitment is not None and happened.commitment != self.commitment:
            return False
        if self.on in ("stage_entered", "stage_left") and self.stage is not None and happened.stage != self.stage:
            return False
        if self.on == "score_crossed":
            before, after = happened.scores_before.get(self.score, 0.0), happened.scores_after.get(self.score, 0.0)
            if self.above is None or not before < self.above <= after:
                return False
        return self.when is None or self.when(context)


@dataclass(frozen=True, slots=True)
class Happening:
    """Something an automation can be triggered by."""

    trigger: str
    stage: str | None = None
    commitment: str | None = None
    scores_before: Mapping[str, float] = field(default_factory=dict)
    scores_after: Mapping[str, float] = field(default_factory=dict)

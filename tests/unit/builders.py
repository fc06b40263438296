"""Builders for the unit tests: a fixed clock, events, leads and small playbooks.

Nothing here touches a database or the network; conditions are the real CEL adapter when a
playbook is read from YAML, or plain callables (`Rule`) when a test builds the domain by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.model import Event, Lead
from leadrelay.domain.playbook import EngagementRule, Playbook, Scoring, Stage, build_playbook
from leadrelay.domain.processing import new_lead, update_fields

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
DAY = timedelta(days=1)

_ids = itertools.count(1)


def days(n: float) -> datetime:
    """The moment `n` days after T0."""
    return T0 + timedelta(days=n)


def event(name: str, at: datetime = T0, *, email: str = "ada@acme.example", type: str = "track",
          properties: dict[str, Any] | None = None, traits: dict[str, Any] | None = None) -> Event:
    return Event(
        message_id=f"msg-{next(_ids)}",
        type=type,
        name=name,
        timestamp=at,
        email=email,
        properties=dict(properties or {}),
        traits=dict(traits or {}),
    )


class Rule:
    """A hand-written condition, for domain tests that do not need CEL."""

    def __init__(self, test: Callable[[Mapping[str, Any]], bool], *variables: str, source: str = "<test rule>"):
        self.test, self.variables, self.source = test, frozenset(variables), source

    def __call__(self, context: Mapping[str, Any]) -> bool:
        return bool(self.test(context))


NEVER = Rule(lambda context: False, "fit", source="false")


def engagement_playbook(*rules: EngagementRule, engagement_max: float = 1e9, half_life_days: float = 30.0) -> Playbook:
    """A two-stage playbook built in plain Python around the given engagement rules."""
    return build_playbook(
        name="test",
        version="1",
        stages=[Stage("lead", "Lead", "marketing", moves=("mql",), rank=0), Stage("mql", "MQL", "sales", rank=1)],
        fields=[],
        scoring=Scoring(engagement_rules=rules, engagement_max=engagement_max, half_life_days=half_life_days),
        mql_rule=NEVER,
    )


DEFAULT_PLAYBOOK = parse_playbook(default_playbook_text(), "default_playbook.yaml")


def lead_in(playbook: Playbook, email: str = "ada@acme.example", at: datetime = T0, **fields: Any) -> Lead:
    """A new lead, with the given fields already known."""
    lead = new_lead(email, playbook, at)
    if fields:
        update_fields(lead, fields, playbook, at)
    return lead


SMALL_PLAYBOOK = """\
name: Small agreement
version: "1"
timezone: {timezone}
stages:
  - id: lead
    team: marketing
    moves: [mql]
  - id: mql
    team: sales
{scoring}
mql:
  rule: {mql_rule}
"""


def small_playbook(scoring: str, *, timezone: str = "UTC", mql_rule: str = "fit >= 40 && engagement >= 40") -> Playbook:
    """A two-stage playbook read from YAML, around the given `scoring:` section."""
    return parse_playbook(SMALL_PLAYBOOK.format(scoring=scoring.strip("\n"), timezone=timezone, mql_rule=mql_rule))

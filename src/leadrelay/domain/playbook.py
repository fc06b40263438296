"""The playbook: the sales–marketing agreement as the domain uses it.

The YAML file is read and checked by `leadrelay.adapters.playbook_file`; what reaches the
domain is this compiled, immutable form. Conditions are opaque callables (the expression
language lives in an adapter), so every rule here can be tested with plain lambdas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone, tzinfo
from typing import Any, Protocol

from leadrelay.domain.automations import Automation
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.model import snake_name
from leadrelay.domain.nurture import EmailTemplate, Sequence
from leadrelay.domain.routing import Routing
from leadrelay.domain.sla import Sla


class Condition(Protocol):
    """A compiled boolean rule; `source` is the text both teams read in the playbook."""

    source: str
    variables: frozenset[str]  # the names it reads: lead, fit, engagement, event, ...

    def __call__(self, context: Mapping[str, Any]) -> bool: ...


MAX_STRING_LENGTH = 1000
MAX_NUMBER = 1e15  # beyond this, a field value is a mistake (and no store keeps every digit)


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    name: str
    team: str
    moves: tuple[str, ...] = ()
    rank: int | None = None  # position in the funnel; None for side stages (recycled, lost, ...)
    outcome: str | None = None  # "won" or "lost" for terminal stages
    reasons: str | None = None  # "hand_back", "disqualify" or "lost": entering needs a reason from that list


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: str = "string"
    values: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    label: str = ""

    def coerce(self, value: Any) -> Any:
        """Return `value` as this field's type, or raise InvalidField saying why."""
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            return None
        kind = self.type
        if kind == "string":
            if isinstance(value, (dict, list)):
                raise InvalidField(f"{self.name}: expected text, got {type(value).__name__}")
            text = str(value).strip()
            if len(text) > MAX_STRING_LENGTH:
                raise InvalidField(f"{self.name}: longer than {MAX_STRING_LENGTH} characters")
            if "\x00" in text:
                raise InvalidField(f"{self.name}: contains a NUL character")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidField(f"{self.name}: is not valid Unicode text (an unpaired surrogate)") from None
            return text
        if kind == "number":
            if isinstance(value, bool):
                raise InvalidField(f"{self.name}: expected a number, got {value!r}")
            out_of_range = f"{self.name}: out of range (numbers are at most {MAX_NUMBER:.0e} either way)"
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidField(f"{self.name}: expected a number, got {str(value)[:40]!r}") from None
            except OverflowError:
                raise InvalidField(out_of_range) from None
            if not math.isfinite(number):
                raise InvalidField(f"{self.name}: expected a finite number, got {value!r}")
            if abs(number) > MAX_NUMBER:
                raise InvalidField(out_of_range)
            return int(number) if number.is_integer() else number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "yes", "1", "y"):
                return True
            if text in ("false", "no", "0", "n"):
                return False
            raise InvalidField(f"{self.name}: expected true or false, got {value!r}")
        if kind == "enum":
            text = str(value).strip()
            for allowed in self.values:
                if allowed.lower() == text.lower():
                    return allowed
            raise InvalidField(f"{self.name}: {value!r} is not one of {', '.join(self.values)}")
        if kind == "date":
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            try:
                return date.fromisoformat(str(value).strip()[:10]).isoformat()
            except ValueError:
                raise InvalidField(f"{self.name}: expected a date like 2026-01-31, got {value!r}") from None
        raise InvalidField(f"{self.name}: unknown field type {kind!r}")  # pragma: no cover


# Fields every playbook has; a playbook may refine them (e.g. make `industry` an enum) and add its own.
STANDARD_FIELDS = (
    FieldSpec("name", label="Name", aliases=("full_name",)),
    FieldSpec("title", label="Job title", aliases=("job_title", "position")),
    FieldSpec("phone", label="Phone", aliases=("phone_number", "mobile")),
    FieldSpec("company", label="Company", aliases=("company_name", "organization", "organisation")),
    FieldSpec("country", label="Country", aliases=("country_code",)),
    FieldSpec("territory", label="Territory", aliases=("region",)),
    FieldSpec("industry", label="Industry"),
    FieldSpec("company_size", "number", label="Company size (employees)",
              aliases=("employees", "employee_count", "number_of_employees")),
    FieldSpec("product", label="Product of interest", aliases=("product_interest", "product_of_interest")),
    FieldSpec("need", label="Need"),
    FieldSpec("timeframe", label="Timeframe"),
    FieldSpec("budget", "number", label="Budget"),
    FieldSpec("source", label="Source", aliases=("lead_source",)),
)


@dataclass(frozen=True, slots=True)
class FitRule:
    name: str
    when: Condition
    points: float


@dataclass(frozen=True, slots=True)
class EngagementRule:
    name: str
    events: frozenset[str]
    points: float
    half_life_days: float
    when: Condition | None = None
    per_day: float | None = None  # most points this rule gives a lead in one day
    max_total: float | None = None  # most points this rule ever gives a lead


@dataclass(frozen=True, slots=True)
class Scoring:
    fit_rules: tuple[FitRule, ...] = ()
    engagement_rules: tuple[EngagementRule, ...] = ()
    fit_max: float = 100.0
    engagement_max: float = 100.0
    half_life_days: float = 30.0
    day_zone: tzinfo = timezone.utc  # where a "day" of the per-day caps begins and ends
    rules_by_event: Mapping[str, tuple[EngagementRule, ...]] = field(default_factory=dict)
    rule_named: Mapping[str, EngagementRule] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FastTrack:
    name: str
    when: Condition
    to: str


@dataclass(frozen=True, slots=True)
class DisqualifyRule:
    name: str
    when: Condition
    reason: str


@dataclass(frozen=True, slots=True)
class Playbook:
    name: str
    version: str
    stages: Mapping[str, Stage]
    fields: Mapping[str, FieldSpec]
    scoring: Scoring
    mql_rule: Condition
    entry_stage: str = "lead"
    mql_stage: str = "mql"
    disqualify_stage: str = "disqualified"
    fast_track: tuple[FastTrack, ...] = ()
    disqualify: tuple[DisqualifyRule, ...] = ()
    hand_back_reasons: tuple[str, ...] = ()
    disqualify_reasons: tuple[str, ...] = ()
    lost_reasons: tuple[str, ...] = ()
    hand_back_stage: str = "recycled"  # where sales returns a lead to marketing
    hand_back_resets_engagement: bool = False  # a handed-back lead earns its engagement again from zero
    routing: Routing = field(default_factory=Routing)
    automations: tuple[Automation, ...] = ()
    sla: Sla = field(default_factory=Sla)
    sequences: Mapping[str, Sequence] = field(default_factory=dict)  # nurture sequences, by id
    email_templates: Mapping[str, EmailTemplate] = field(default_factory=dict)  # what sequences send, by name
    timezone: str = "UTC"
    source: str = ""  # the YAML text this playbook was read from
    moves: frozenset[tuple[str, str]] = field(default=frozenset())
    field_by_alias: Mapping[str, FieldSpec] = field(default_factory=dict)
    # the predictive model rules read as `p_win` (a domain.prediction.WinModel), when one is in use
    win_model: Any = None

    def allows(self, from_stage: str, to_stage: str) -> bool:
        return (from_stage, to_stage) in self.moves

    def rank(self, stage: str) -> int:
        """Funnel position of a stage; side stages rank below every funnel stage."""
        found = self.stages.get(stage)
        return -1 if found is None or found.rank is None else found.rank

    def reasons_for(self, stage: str) -> tuple[str, ...]:
        kind = self.stages[stage].reasons
        if kind == "hand_back":
            return self.hand_back_reasons
        if kind == "disqualify":
            return self.disqualify_reasons
        if kind == "lost":
            return self.lost_reasons
        return ()

    @property
    def accept_stage(self) -> str:
        """Where accepting a hand-off takes a lead: the funnel stage after the MQL stage."""
        after = self.rank(self.mql_stage) + 1
        return next((stage.id for stage in self.stages.values() if stage.rank == after), self.mql_stage)

    @property
    def sales_stages(self) -> list[str]:
        """The board's columns: the sales team's stages, in playbook order."""
        return [stage.id for stage in self.stages.values() if stage.team == "sales"]

    def field_for(self, key: str) -> FieldSpec | None:
        """The field a trait or column name stands for (its name or one of its aliases)."""
        return self.field_by_alias.get(snake_name(key))


def build_playbook(
    *,
    stages: list[Stage],
    fields: list[FieldSpec],
    scoring: Scoring,
    **rest: Any,
) -> Playbook:
    """Assemble a Playbook and its lookup tables (moves, aliases, rules by event)."""
    by_event: dict[str, list[EngagementRule]] = {}
    for rule in scoring.engagement_rules:
        for name in rule.events:
            by_event.setdefault(name, []).append(rule)
    scoring = replace(
        scoring,
        rules_by_event={name: tuple(rules) for name, rules in by_event.items()},
        rule_named={rule.name: rule for rule in scoring.engagement_rules},
    )
    aliases: dict[str, FieldSpec] = {}
    for spec in fields:
        for key in (spec.name, *spec.aliases):
            aliases[key.lower()] = spec
    return Playbook(
        stages={stage.id: stage for stage in stages},
        fields={spec.name: spec for spec in fields},
        scoring=scoring,
        moves=frozenset((stage.id, to) for stage in stages for to in stage.moves),
        field_by_alias=aliases,
        **rest,
    )


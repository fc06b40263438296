"""Reading the playbook file: YAML in, a checked domain `Playbook` out.

Every problem in the file is reported, each as `FILE:LINE:COL: message`, not only the first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leadrelay.adapters.expressions import CelCondition, ExpressionError
from leadrelay.adapters.public_holidays import calendar as business_calendar
from leadrelay.adapters.templates import HtmlTemplate, TemplateError, TextTemplate
from leadrelay.domain import automations, nurture, routing, sla
from leadrelay.domain import playbook as domain
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.model import snake_name

Path_ = tuple[str | int, ...]
Compile = Callable[[Path_, str, tuple[str, ...]], CelCondition | None]
Model = TypeVar("Model", bound=BaseModel)

# What each kind of condition may read.
LEAD_NAMES = ("lead", "fit", "engagement", "total", "stage", "p_win")  # p_win: the predictive score
EVENT_NAMES = ("event", "properties", "lead")
FIT_NAMES = ("lead",)
ROUTING_NAMES = (*LEAD_NAMES, "account")
LEAD_EXTRA_KEYS = ("email", "email_domain", "stage")
ACCOUNT_KEYS = ("id", "domain", "name", "is_target", "owner", "traits")


def default_playbook_text() -> str:
    return resources.files("leadrelay").joinpath("default_playbook.yaml").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlaybookError(Exception):
    """The playbook was refused; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


# --- the file's schema ------------------------------------------------------------------

Name = Annotated[str, Field(min_length=1, max_length=200)]
StageId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Points = Annotated[float, Field(ge=-1000, le=1000)]
Positive = Annotated[float, Field(gt=0, le=1_000_000)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StageIn(_Schema):
    id: StageId
    name: Name | None = None
    team: Literal["marketing", "sales"]
    moves: list[StageId] = []
    funnel: bool = True
    outcome: Literal["won", "lost"] | None = None
    reasons: Literal["hand_back", "disqualify", "lost"] | None = None


class FieldIn(_Schema):
    name: StageId
    type: Literal["string", "number", "boolean", "enum", "date"] = "string"
    values: list[Name] = []
    aliases: list[Name] = []
    label: Name | None = None


class FitRuleIn(_Schema):
    name: Name
    when: Name
    points: Points


class EngagementRuleIn(_Schema):
    name: Name
    event: Name | list[Name]
    when: Name | None = None
    points: Points
    per_day: Positive | None = None
    max: Positive | None = None
    half_life_days: Positive | None = None


Items = list[Any]  # each item is checked on its own, so one mistake does not hide the others


class FitIn(_Schema):
    max: Positive = 100
    rules: Items = []


class EngagementIn(_Schema):
    max: Positive = 100
    half_life_days: Positive = 30
    rules: Items = []


class ScoringIn(_Schema):
    fit: dict[str, Any] = {}
    engagement: dict[str, Any] = {}


class MqlIn(_Schema):
    rule: Name
    stage: StageId = "mql"


class FastTrackIn(_Schema):
    name: Name
    when: Name
    to: StageId


class DisqualifyIn(_Schema):
    name: Name
    when: Name
    reason: Name


class ReasonsIn(_Schema):
    hand_back: list[Name] = []
    disqualify: list[Name] = []
    lost: list[Name] = []


class HandBackIn(_Schema):
    stage: StageId | None = None
    reset_engagement: bool = False


Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


class RepIn(_Schema):
    email: Email
    name: Name | None = None
    weight: Positive = 1
    max_open_deals: Count | None = None
    max_new_deals: Count | None = None


class TeamIn(_Schema):
    id: StageId
    name: Name | None = None
    method: Literal["round_robin", "weighted", "capacity"] = "round_robin"
    max_open_deals: Count | None = None
    max_new_deals: Count | None = None
    manager: Email | None = None
    reps: Items = []


class RoutingRuleIn(_Schema):
    name: Name
    when: Name | None = None
    team: StageId | None = None
    account_owner: bool = False


class RoutingIn(_Schema):
    period: Literal["day", "week"] = "day"
    fallback: StageId = "unassigned"
    teams: Items = []
    rules: Items = []


class AutomationIn(_Schema):
    name: Name
    trigger: Literal[automations.TRIGGERS]  # type: ignore[valid-type]
    stage: StageId | None = None
    commitment: Name | None = None
    score: Literal["fit", "engagement", "total"] = "total"
    above: Points | None = None
    when: Name | None = None
    do: Items = Field(min_length=1)


class TaskIn(_Schema):
    task: Name
    due_hours: Positive = 24


class EmailIn(_Schema):
    email: Annotated[str, Field(min_length=1, max_length=320)]
    subject: Name
    body: Annotated[str, Field(min_length=1, max_length=20_000)]


class WebhookIn(_Schema):
    webhook: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.\-]*$", max_length=100)]


class SetIn(_Schema):
    set: Annotated[dict[str, Any], Field(min_length=1)]


class EnrollIn(_Schema):
    enroll: StageId


ACTIONS: dict[str, type[_Schema]] = {"task": TaskIn, "email": EmailIn, "webhook": WebhookIn, "set": SetIn,
                                     "enroll": EnrollIn}

# --- nurture: email templates and sequences ---
TemplateName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_\-]*$", max_length=64)]
TemplateText = Annotated[str, Field(min_length=1, max_length=100_000)]
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)\s*$")
BRANCH_NAMES = (*LEAD_NAMES, "last_email", "emails")
BRANCH_KEYS = {"last_email": ("opened", "clicked"), "emails": ("sent", "opened", "clicked")}


class EmailTemplateIn(_Schema):
    subject: Annotated[str, Field(min_length=1, max_length=1000)]
    text: TemplateText
    html: TemplateText | None = None


class SequenceIn(_Schema):
    id: StageId
    name: Name | None = None
    kind: StageId = "nurture"
    trigger: Literal[nurture.TRIGGERS] = "manual"  # type: ignore[valid-type]
    stage: StageId | None = None
    when: Name | None = None
    exit_when: Name | None = None
    re_enroll: Literal["never", "always"] = "never"
    re_enroll_after_days: Positive | None = None
    steps: Items = Field(min_length=1)


class EmailStepIn(_Schema):
    id: StepId | None = None
    email: TemplateName


class WaitStepIn(_Schema):
    id: StepId | None = None
    wait: Annotated[str, Field(min_length=1, max_length=40)]


class BranchStepIn(_Schema):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    id: StepId | None = None
    if_: Name = Field(alias="if")
    then: StepId
    else_: StepId = Field("next", alias="else")


STEPS: dict[str, type[_Schema]] = {"email": EmailStepIn, "wait": WaitStepIn, "if": BranchStepIn}

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Hours = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")]
Share = Annotated[float, Field(gt=0, lt=1)]


class BusinessHoursIn(_Schema):
    teams: list[StageId] = []  # none: the business hours of every team not listed elsewhere
    timezone: Name = "UTC"
    days: list[Literal[DAY_NAMES]] = Field(["mon", "tue", "wed", "thu", "fri"], min_length=1)  # type: ignore[valid-type]
    hours: Hours = "09:00-17:00"
    holidays: list[Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,4})?$")]] = []  # DE, US, DE-BY
    company_holidays: list[date] = []


class CommitmentIn(_Schema):
    name: Name
    measure: Literal[sla.MEASURES]  # type: ignore[valid-type]
    within_hours: Positive | None = None
    within_days: Positive | None = None
    time: Literal["business", "wall"] = "business"
    teams: list[StageId] = []
    when: Name | None = None
    stage: StageId | None = None
    attempts: Annotated[int, Field(ge=1, le=1000)] = 1
    warn_at: Share | None = None
    on_breach: list[Literal["notify_manager", "reassign"]] = []
    restart_on_reassign: bool = True


class MarketingIn(_Schema):
    name: Name
    mqls: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    per: Literal["week", "month"] = "week"
    source: Name | None = None
    acceptance_rate: Share | None = None
    sql_rate: Share | None = None


class SlaIn(_Schema):
    warn_at: Share = 0.75
    business_hours: Items = []
    sales: Items = []
    marketing: Items = []


class PlaybookIn(_Schema):
    name: Name
    version: Annotated[str, Field(min_length=1, max_length=64)]
    timezone: Name = "UTC"
    entry_stage: StageId = "lead"
    stages: Items = Field(min_length=2)
    fields: Items = []
    scoring: dict[str, Any] = {}
    mql: dict[str, Any]
    fast_track: Items = []
    disqualify: Items = []
    reasons: dict[str, Any] = {}
    hand_back: dict[str, Any] = {}
    routing: dict[str, Any] = {}
    automations: Items = []
    sla: dict[str, Any] = {}
    emails: dict[str, Any] = {}
    sequences: Items = []

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


# --- reading ------------------------------------------------------------------------------


def load_playbook(path: str | Path) -> domain.Playbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlaybookError([Problem(str(path), 1, 1, f"cannot read the playbook: {error}")]) from None
    return parse_playbook(text, str(path))


MAX_PLAYBOOK_BYTES = 1_000_000  # a real playbook is a few tens of KB
MAX_PLAYBOOK_VALUES = 100_000  # values once YAML aliases are expanded (a few thousand in a real one)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many values the YAML node graph stands for with every alias expanded (counted
    without expanding, each shared node once; stops past `limit`)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        if not ready:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = min(limit + 1, 1 + sum(sizes.get(id(child), 1) for child in children))
    return sizes[id(root)]


def parse_playbook(text: str, filename: str = "<playbook>") -> domain.Playbook:
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_PLAYBOOK_BYTES:
        raise PlaybookError([Problem(filename, 1, 1, f"the playbook is larger than {MAX_PLAYBOOK_BYTES // 1000:,} KB "
                                                     f"({size:,} bytes): is it the right file?")])
    reader = _Reader(text, filename)
    result = reader.read()
    if reader.problems:
        raise PlaybookError(sorted(reader.problems, key=lambda p: (p.line, p.column)))
    assert result is not None
    return result


class _Reader:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename
        self.problems: list[Problem] = []
        self.sequence_ids: list[str] = []
        self.marks: dict[Path_, tuple[int, int]] = {}

    def problem(self, where: Path_, message: str) -> None:
        where = tuple(where)
        while where and where not in self.marks:
            where = where[:-1]
        line, column = self.marks.get(where, (1, 1))
        self.problems.append(Problem(self.filename, line, column, message))

    # YAML, with the position of every key and value
    def read(self) -> domain.Playbook | None:
        try:
            loader = yaml.SafeLoader(self.text)  # refuses characters YAML does not allow, at once
        except yaml.reader.ReaderError as error:
            before = self.text[:error.position]
            line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
            self.problems.append(Problem(self.filename, line, column, f"not valid YAML: character "
                                         f"U+{error.character:04X} is not allowed (only printable characters)"))
            return None
        try:
            node = loader.get_single_node()
            if node is not None and _expanded_size(node, MAX_PLAYBOOK_VALUES) > MAX_PLAYBOOK_VALUES:
                self.problems.append(Problem(self.filename, 1, 1, f"the playbook stands for more than "
                                             f"{MAX_PLAYBOOK_VALUES:,} values once its aliases (*name) are expanded"))
                return None
            data = loader.construct_document(node) if node is not None else None
        except RecursionError:
            self.problems.append(Problem(self.filename, 1, 1, "not valid YAML: lists or mappings nested too deeply"))
            return None
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            message = " ".join(str(part) for part in (error.context, error.problem) if part)
            self.problems.append(Problem(self.filename, line, column, f"not valid YAML: {message}"))
            return None
        except yaml.YAMLError as error:
            self.problems.append(Problem(self.filename, 1, 1, f"not valid YAML: {error}"))
            return None
        finally:
            loader.dispose()
        if not isinstance(data, dict):
            self.problems.append(Problem(self.filename, 1, 1, "the playbook must be a YAML mapping (key: value)"))
            return None
        self._mark(node, ())
        parsed = self._valid(PlaybookIn, data, ())
        return None if parsed is None else self._build(parsed)

    def _valid(self, schema: type[Model], value: Any, where: Path_) -> Model | None:
        """`value` checked against `schema`. Every problem is recorded; keys that are unknown or
        wrong but optional are then set aside, so one mistake does not hide the checks of the
        rest. None when something required is wrong."""
        try:
            return schema.model_validate(value)
        except ValidationError as error:
            problems = error.errors()
        for item in problems:
            at = (*where, *item["loc"])
            label = _path_label(at)
            if item["type"] == "extra_forbidden":
                message = f"unknown key {item['loc'][-1]!r}{_suggest(str(item['loc'][-1]), list(schema.model_fields))}"
            else:
                message = item["msg"][0].lower() + item["msg"][1:]
            self.problem(at, f"{label}: {message}" if label else message)
        if not isinstance(value, dict):
            return None
        optional = {name for name, spec in schema.model_fields.items() if not spec.is_required()}
        wrong = {item["loc"][0] for item in problems if item["loc"]}
        if not wrong or any(key not in optional and key in schema.model_fields for key in wrong):
            return None
        try:
            return schema.model_validate({key: v for key, v in value.items() if key not in wrong})
        except ValidationError:
            return None

    def _items(self, schema: type[Model], values: list[Any], where: Path_) -> list[tuple[int, Model]]:
        checked = ((index, self._valid(schema, value, (*where, index))) for index, value in enumerate(values))
        return [(index, item) for index, item in checked if item is not None]

    def _mark(self, node: yaml.Node, where: Path_) -> None:
        self.marks[where] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    mark = key_node.start_mark
                    self.problems.append(Problem(self.filename, mark.line + 1, mark.column + 1,
                                                 f"{_path_label((*where, key))}: duplicate key {key!r}"))
                seen.add(key)
                self._mark(value_node, (*where, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._mark(item, (*where, index))

    # meaning: stages, fields, expressions
    def _build(self, spec: PlaybookIn) -> domain.Playbook | None:
        problems_before = len(self.problems)
        zone = None
        try:
            zone = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(("timezone",), f"timezone: unknown time zone {spec.timezone!r} (e.g. UTC, Europe/Berlin)")
        reasons = self._valid(ReasonsIn, spec.reasons, ("reasons",)) or ReasonsIn()
        mql = self._valid(MqlIn, spec.mql, ("mql",))
        scoring = self._valid(ScoringIn, spec.scoring, ("scoring",)) or ScoringIn()
        fit = self._valid(FitIn, scoring.fit, ("scoring", "fit")) or FitIn()
        engagement = self._valid(EngagementIn, scoring.engagement, ("scoring", "engagement")) or EngagementIn()

        stages = self._items(StageIn, spec.stages, ("stages",))
        # references are checked against every id written, even in a stage with other mistakes
        stage_ids = [item["id"] for item in spec.stages if isinstance(item, dict) and isinstance(item.get("id"), str)]

        def check_stage(where: Path_, stage_id: str) -> None:
            if stage_id not in stage_ids:
                self.problem(where, f"{_path_label(where)}: unknown stage {stage_id!r}{_suggest(stage_id, stage_ids)}")

        seen: set[str] = set()
        for index, stage in stages:
            if stage.id in seen:
                self.problem(("stages", index, "id"), f"stages[{index}].id: duplicate stage {stage.id!r}")
            seen.add(stage.id)
            for m, target in enumerate(stage.moves):
                check_stage(("stages", index, "moves", m), target)
                if target == stage.id:
                    self.problem(("stages", index, "moves", m), f"stages[{index}].moves: a stage cannot move to itself")
            if stage.outcome == "won" and stage.moves:
                self.problem(("stages", index, "moves"), f"stages[{index}]: a won stage is final and has no moves")
            if stage.reasons and not getattr(reasons, stage.reasons):
                self.problem(("stages", index, "reasons"), f"stages[{index}].reasons: reasons.{stage.reasons} is empty")
        check_stage(("entry_stage",), spec.entry_stage)
        if mql is not None:
            check_stage(("mql", "stage"), mql.stage)

        fields = self._fields(spec)
        lead_keys = {"lead": [*fields, *LEAD_EXTRA_KEYS], "account": ACCOUNT_KEYS}
        sample = _sample(fields)

        def condition(where: Path_, source: str, names: tuple[str, ...]) -> CelCondition | None:
            try:
                compiled = CelCondition(source, names, lead_keys)
            except ExpressionError as error:
                self.problem(where, f"{_path_label(where)}: {error}")
                return None
            mistake = compiled.mistake_on(sample)
            if mistake:
                self.problem(where, f"{_path_label(where)}: {mistake}")
            return compiled

        fit_rules = [
            domain.FitRule(rule.name, condition(("scoring", "fit", "rules", i, "when"), rule.when, FIT_NAMES), rule.points)
            for i, rule in self._items(FitRuleIn, fit.rules, ("scoring", "fit", "rules"))
        ]
        engagement_rules = []
        names_seen: set[str] = set()
        for i, rule in self._items(EngagementRuleIn, engagement.rules, ("scoring", "engagement", "rules")):
            if rule.name in names_seen:
                self.problem(("scoring", "engagement", "rules", i, "name"),
                             f"scoring.engagement.rules[{i}].name: duplicate rule name {rule.name!r}")
            names_seen.add(rule.name)
            events = [rule.event] if isinstance(rule.event, str) else rule.event
            engagement_rules.append(domain.EngagementRule(
                name=rule.name,
                events=frozenset(snake_name(name) for name in events),
                points=rule.points,
                half_life_days=rule.half_life_days or engagement.half_life_days,
                when=condition(("scoring", "engagement", "rules", i, "when"), rule.when, EVENT_NAMES) if rule.when else None,
                per_day=rule.per_day,
                max_total=rule.max,
            ))
        mql_rule = condition(("mql", "rule"), mql.rule, LEAD_NAMES) if mql else None
        fast_track = []
        for i, rule in self._items(FastTrackIn, spec.fast_track, ("fast_track",)):
            check_stage(("fast_track", i, "to"), rule.to)
            when = condition(("fast_track", i, "when"), rule.when, LEAD_NAMES + EVENT_NAMES[:2])
            fast_track.append(domain.FastTrack(rule.name, when, rule.to))  # type: ignore[arg-type]
        disqualify_stage = next((stage.id for _, stage in stages if stage.reasons == "disqualify"), None)
        disqualify = []
        for i, rule in self._items(DisqualifyIn, spec.disqualify, ("disqualify",)):
            if rule.reason not in reasons.disqualify:
                self.problem(("disqualify", i, "reason"), f"disqualify[{i}].reason: {rule.reason!r} is not in reasons.disqualify")
            when = condition(("disqualify", i, "when"), rule.when, LEAD_NAMES)
            disqualify.append(domain.DisqualifyRule(rule.name, when, rule.reason))  # type: ignore[arg-type]
        if spec.disqualify and disqualify_stage is None and len(stages) == len(spec.stages):
            self.problem(("disqualify",), "disqualify: rules need a stage with `reasons: disqualify` to move leads to")
        hand_back = self._valid(HandBackIn, spec.hand_back, ("hand_back",)) or HandBackIn()
        if hand_back.stage is not None:
            check_stage(("hand_back", "stage"), hand_back.stage)
        hand_back_stage = hand_back.stage or next((s.id for _, s in stages if s.reasons == "hand_back"), "recycled")
        routing_ = self._routing(spec, condition)
        sla_ = self._sla(spec, check_stage, routing_, condition)
        templates = self._emails(spec)
        sequences = self._sequences(spec, check_stage, templates, lead_keys, sample)
        automations_ = self._automations(spec, condition, check_stage, fields, sla_)

        if len(self.problems) > problems_before or mql is None or mql_rule is None or zone is None:
            return None
        funnel = [stage.id for _, stage in stages if stage.funnel]
        return domain.build_playbook(
            name=spec.name,
            version=spec.version,
            stages=[
                domain.Stage(
                    id=stage.id,
                    name=stage.name or stage.id.upper(),
                    team=stage.team,
                    moves=tuple(stage.moves),
                    rank=funnel.index(stage.id) if stage.funnel else None,
                    outcome=stage.outcome,
                    reasons=stage.reasons,
                )
                for _, stage in stages
            ],
            fields=list(fields.values()),
            scoring=domain.Scoring(
                fit_rules=tuple(fit_rules),  # type: ignore[arg-type]
                engagement_rules=tuple(engagement_rules),
                fit_max=fit.max,
                engagement_max=engagement.max,
                half_life_days=engagement.half_life_days,
                day_zone=zone,
            ),
            mql_rule=mql_rule,
            entry_stage=spec.entry_stage,
            mql_stage=mql.stage,
            disqualify_stage=disqualify_stage or "disqualified",
            fast_track=tuple(fast_track),
            disqualify=tuple(disqualify),
            hand_back_reasons=tuple(reasons.hand_back),
            disqualify_reasons=tuple(reasons.disqualify),
            lost_reasons=tuple(reasons.lost),
            hand_back_stage=hand_back_stage,
            hand_back_resets_engagement=hand_back.reset_engagement,
            routing=routing_,
            automations=tuple(automations_),
            sla=sla_,
            sequences=sequences,
            email_templates=templates,
            timezone=spec.timezone,
            source=self.text,
        )

    def _routing(self, spec: PlaybookIn, condition: Compile) -> routing.Routing:
        where: Path_ = ("routing",)
        parsed = self._valid(RoutingIn, spec.routing, where) or RoutingIn()
        teams: dict[str, routing.Team] = {}
        for i, team in self._items(TeamIn, parsed.teams, (*where, "teams")):
            at = (*where, "teams", i)
            if team.id in teams:
                self.problem((*at, "id"), f"{_path_label(at)}.id: duplicate team {team.id!r}")
            if not team.reps:
                self.problem(at, f"{_path_label(at)}: a team needs at least one rep under `reps`")
            reps: dict[str, routing.Rep] = {}
            for j, rep in self._items(RepIn, team.reps, (*at, "reps")):
                email = rep.email.lower()
                if email in reps:
                    self.problem((*at, "reps", j), f"{_path_label((*at, 'reps', j))}: {email!r} is listed twice")
                reps[email] = routing.Rep(email, rep.name or email, rep.weight, rep.max_open_deals, rep.max_new_deals)
            teams[team.id] = routing.Team(team.id, team.name or team.id, tuple(reps.values()), team.method,
                                          team.max_open_deals, team.max_new_deals, team.manager)
        if parsed.fallback in teams:
            self.problem((*where, "fallback"), f"routing.fallback: {parsed.fallback!r} is a team; "
                                               "the queue for leads nobody takes needs a name of its own")
        team_ids = [team.get("id") for team in parsed.teams if isinstance(team, dict) and isinstance(team.get("id"), str)]
        rules = []
        for i, rule in self._items(RoutingRuleIn, parsed.rules, (*where, "rules")):
            at = (*where, "rules", i)
            if rule.team is None and not rule.account_owner:
                self.problem(at, f"{_path_label(at)}: a rule picks a `team`, or gives leads to their account's "
                                 "owner (`account_owner: true`)")
            if rule.team is not None and rule.team not in team_ids:
                self.problem((*at, "team"), f"{_path_label(at)}.team: unknown team {rule.team!r}"
                                            f"{_suggest(rule.team, team_ids)}")
            when = condition((*at, "when"), rule.when, ROUTING_NAMES) if rule.when else None
            rules.append(routing.RoutingRule(rule.name, when, rule.team, rule.account_owner))
        return routing.Routing(tuple(rules), teams, parsed.fallback, parsed.period)

    def _sla(self, spec: PlaybookIn, check_stage: Callable[[Path_, str], None], routing_: routing.Routing,
             condition: Compile) -> sla.Sla:
        where: Path_ = ("sla",)
        parsed = self._valid(SlaIn, spec.sla, where) or SlaIn()
        years = range(date.today().year - 2, date.today().year + 11)  # public holidays known this far ahead
        calendars: dict[str, Any] = {}
        default = None
        for i, hours in self._items(BusinessHoursIn, parsed.business_hours, (*where, "business_hours")):
            at = (*where, "business_hours", i)
            opens, closes = (time.fromisoformat(part) for part in hours.hours.split("-"))
            if closes <= opens:
                self.problem((*at, "hours"), f"{_path_label(at)}.hours: closes before it opens ({hours.hours})")
                continue
            countries = [code.split("-")[0] for code in hours.holidays]
            subdivisions = {code.split("-")[0].upper(): code.split("-")[1] for code in hours.holidays if "-" in code}
            try:
                built = business_calendar(hours.timezone, years=years, days=[DAY_NAMES.index(d) for d in hours.days],
                                          opens=opens, closes=closes, countries=countries, subdivisions=subdivisions,
                                          extra_dates=hours.company_holidays)
            except ValueError as error:
                self.problem(at, f"{_path_label(at)}: {error}")
                continue
            for team in hours.teams or [None]:
                if team is not None and team not in routing_.teams:
                    self.problem((*at, "teams"), f"{_path_label(at)}.teams: unknown team {team!r}"
                                                 f"{_suggest(team, list(routing_.teams))}")
                if team is None:
                    default = built
                else:
                    calendars[team] = built
        commitments = []
        names: set[str] = set()
        for i, item in self._items(CommitmentIn, parsed.sales, (*where, "sales")):
            at = (*where, "sales", i)
            if item.name in names:
                self.problem((*at, "name"), f"{_path_label(at)}.name: duplicate commitment {item.name!r}")
            names.add(item.name)
            if (item.within_hours is None) == (item.within_days is None):
                self.problem(at, f"{_path_label(at)}: give `within_hours` or `within_days` (one of them)")
                continue
            if (item.measure == "stage_time") != (item.stage is not None):
                self.problem(at, f"{_path_label(at)}: `stage` goes with measure stage_time, and only with it")
            if item.stage is not None:
                check_stage((*at, "stage"), item.stage)
            for team in item.teams:
                if team not in routing_.teams:
                    self.problem((*at, "teams"), f"{_path_label(at)}.teams: unknown team {team!r}"
                                                 f"{_suggest(team, list(routing_.teams))}")
            within = timedelta(hours=item.within_hours) if item.within_hours else timedelta(days=item.within_days or 0)
            commitments.append(sla.Commitment(
                name=item.name, measure=item.measure, within=within,
                business=item.time == "business" and item.within_days is None,  # days are calendar days
                teams=frozenset(item.teams), stage=item.stage, attempts=item.attempts,
                warn_at=item.warn_at or parsed.warn_at, notify_manager="notify_manager" in item.on_breach,
                reassign="reassign" in item.on_breach, restart_on_reassign=item.restart_on_reassign,
                when=condition((*at, "when"), item.when, FIT_NAMES) if item.when else None,
            ))
        marketing = []
        for i, item in self._items(MarketingIn, parsed.marketing, (*where, "marketing")):
            at = (*where, "marketing", i)
            given = {kind: value for kind, value in (("mql_volume", item.mqls), ("acceptance_rate", item.acceptance_rate),
                                                     ("sql_rate", item.sql_rate)) if value is not None}
            if len(given) != 1:
                self.problem(at, f"{_path_label(at)}: a marketing commitment is one of `mqls` (with `per`), "
                                 "`acceptance_rate` or `sql_rate`")
                continue
            [(kind, target)] = given.items()
            if item.name in names:
                self.problem((*at, "name"), f"{_path_label(at)}.name: duplicate commitment {item.name!r}")
            names.add(item.name)
            marketing.append(sla.MarketingCommitment(item.name, kind, float(target), item.per, item.source))
        return sla.Sla(tuple(commitments), calendars, default or sla.WALL_CLOCK, tuple(marketing))

    def _automations(self, spec: PlaybookIn, condition: Compile, check_stage: Callable[[Path_, str], None],
                     fields: dict[str, domain.FieldSpec], sla_: sla.Sla) -> list[automations.Automation]:
        found = []
        commitments = [c.name for c in sla_.commitments]
        for i, item in self._items(AutomationIn, spec.automations, ("automations",)):
            at: Path_ = ("automations", i)
            if item.commitment is not None:
                if item.trigger not in ("sla_warning", "sla_breach"):
                    self.problem((*at, "commitment"), f"{_path_label(at)}.commitment: only sla_warning and "
                                                      "sla_breach automations name a commitment")
                elif item.commitment not in commitments:
                    self.problem((*at, "commitment"), f"{_path_label(at)}.commitment: unknown commitment "
                                                      f"{item.commitment!r}{_suggest(item.commitment, commitments)}")
            if item.stage is not None:
                if item.trigger not in ("stage_entered", "stage_left"):
                    self.problem((*at, "stage"), f"{_path_label(at)}.stage: only stage_entered and stage_left "
                                                 "automations name a stage")
                check_stage((*at, "stage"), item.stage)
            if (item.trigger == "score_crossed") != (item.above is not None):
                self.problem(at, f"{_path_label(at)}: `above` (the score line) goes with trigger score_crossed, "
                                 "and only with it")
            when = condition((*at, "when"), item.when, ROUTING_NAMES) if item.when else None
            actions = [self._action(raw, (*at, "do", j), fields) for j, raw in enumerate(item.do)]
            found.append(automations.Automation(
                item.name, item.trigger, tuple(a for a in actions if a is not None), item.stage, item.score,  # type: ignore[arg-type]
                item.above, when, item.commitment,
            ))
        return found

    def _action(self, raw: Any, where: Path_, fields: dict[str, domain.FieldSpec]) -> automations.Action | None:
        label = _path_label(where)
        kinds = [kind for kind in ACTIONS if isinstance(raw, dict) and kind in raw]
        if len(kinds) != 1:
            self.problem(where, f"{label}: an action is exactly one of {', '.join(ACTIONS)} "
                                "(e.g. `- task: Call within a day`)")
            return None
        parsed = self._valid(ACTIONS[kinds[0]], raw, where)
        if isinstance(parsed, TaskIn):
            return automations.TaskAction(parsed.task, parsed.due_hours)
        if isinstance(parsed, WebhookIn):
            return automations.WebhookAction(parsed.webhook)
        if isinstance(parsed, EmailIn):
            to = parsed.email.strip()
            if to not in ("owner", "manager") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", to):
                self.problem((*where, "email"), f"{label}.email: {to!r} is not `owner`, `manager` or an address")
            subject, body = self._template((*where, "subject"), parsed.subject), self._template((*where, "body"), parsed.body)
            return None if subject is None or body is None else automations.EmailAction(to, subject, body)
        if isinstance(parsed, EnrollIn):
            if parsed.enroll not in self.sequence_ids:
                self.problem((*where, "enroll"), f"{label}.enroll: unknown sequence {parsed.enroll!r}"
                                                 f"{_suggest(parsed.enroll, self.sequence_ids)}")
            return automations.EnrollAction(parsed.enroll)
        if isinstance(parsed, SetIn):
            values = {}
            for name, value in parsed.set.items():
                spec_ = fields.get(name)
                if spec_ is None:
                    self.problem((*where, "set", name), f"{label}.set: unknown field {name!r}{_suggest(name, list(fields))}")
                    continue
                try:
                    values[name] = spec_.coerce(value)
                except InvalidField as error:
                    self.problem((*where, "set", name), f"{label}.set.{error}")
            return automations.SetAction(values)
        return None

    def _emails(self, spec: PlaybookIn) -> dict[str, nurture.EmailTemplate]:
        """`emails:` the templates sequences send, by name: subject, text and optional html."""
        found: dict[str, nurture.EmailTemplate] = {}
        for name, raw in spec.emails.items():
            at: Path_ = ("emails", name)
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name) or len(name) > 64:
                self.problem(at, f"emails: {name!r} is not a template name (lower case letters, digits and _, "
                                 "starting with a letter)")
                continue
            parsed = self._valid(EmailTemplateIn, raw, at)
            if parsed is None:
                continue
            subject = self._template((*at, "subject"), parsed.subject)
            text = self._template((*at, "text"), parsed.text)
            html = self._template((*at, "html"), parsed.html, html=True) if parsed.html is not None else None
            if subject is not None and text is not None and (parsed.html is None or html is not None):
                found[name] = nurture.EmailTemplate(name, subject, text, html)
        return found

    def _sequences(self, spec: PlaybookIn, check_stage: Callable[[Path_, str], None],
                   templates: dict[str, nurture.EmailTemplate], lead_keys: dict[str, Any],
                   sample: dict[str, Any]) -> dict[str, nurture.Sequence]:
        self.sequence_ids = [item["id"] for item in spec.sequences
                             if isinstance(item, dict) and isinstance(item.get("id"), str)]
        branch_keys = {**lead_keys, **BRANCH_KEYS}
        branch_sample = {**sample, "last_email": {"opened": True, "clicked": False},
                         "emails": {"sent": 1, "opened": 1, "clicked": 0}}

        def compile_(where: Path_, source: str, names: tuple[str, ...]) -> CelCondition | None:
            try:
                compiled = CelCondition(source, names, branch_keys)
            except ExpressionError as error:
                self.problem(where, f"{_path_label(where)}: {error}")
                return None
            mistake = compiled.mistake_on(branch_sample)
            if mistake:
                self.problem(where, f"{_path_label(where)}: {mistake}")
            return compiled

        found: dict[str, nurture.Sequence] = {}
        for i, item in self._items(SequenceIn, spec.sequences, ("sequences",)):
            at: Path_ = ("sequences", i)
            label = _path_label(at)
            if item.id in found:
                self.problem((*at, "id"), f"{label}.id: duplicate sequence {item.id!r}")
            if (item.trigger == "stage_entered") != (item.stage is not None):
                self.problem(at, f"{label}: `stage` goes with trigger stage_entered, and only with it")
            if item.stage is not None:
                check_stage((*at, "stage"), item.stage)
            if item.trigger == "segment" and item.when is None:
                self.problem(at, f"{label}: a segment sequence needs `when` (the condition that puts leads in it)")
            if item.re_enroll_after_days is not None and item.re_enroll != "always":
                self.problem((*at, "re_enroll_after_days"), f"{label}.re_enroll_after_days: goes with "
                                                             "`re_enroll: always`")
            when = compile_((*at, "when"), item.when, LEAD_NAMES) if item.when else None
            exit_when = compile_((*at, "exit_when"), item.exit_when, LEAD_NAMES) if item.exit_when else None
            steps = self._steps(item.steps, (*at, "steps"), templates, compile_)
            if steps is None:
                continue
            loop = nurture.loops_without_wait(steps)
            if loop:
                self.problem((*at, "steps"), f"{label}.steps: steps {', '.join(str(n + 1) for n in loop)} make a loop "
                                             "without a wait (a lead would be mailed again and again)")
            after = timedelta(days=item.re_enroll_after_days) if item.re_enroll_after_days else None
            found[item.id] = nurture.Sequence(
                id=item.id, name=item.name or item.id.replace("_", " ").capitalize(), steps=steps,
                trigger=nurture.Trigger(item.trigger, item.stage, when), kind=item.kind, exit_when=exit_when,
                reenroll=item.re_enroll == "always", reenroll_after=after,
            )
        return found

    def _steps(self, raw_steps: list[Any], where: Path_, templates: dict[str, nurture.EmailTemplate],
               compile_: Callable[[Path_, str, tuple[str, ...]], CelCondition | None]) -> tuple[nurture.Step, ...] | None:
        parsed: list[tuple[int, _Schema]] = []
        for j, raw in enumerate(raw_steps):
            kinds = [kind for kind in STEPS if isinstance(raw, dict) and kind in raw]
            if len(kinds) != 1:
                self.problem((*where, j), f"{_path_label((*where, j))}: a step is exactly one of `email: TEMPLATE`, "
                                          "`wait: 3d` or `if: CONDITION` (with `then: STEP`)")
                continue
            step = self._valid(STEPS[kinds[0]], raw, (*where, j))
            if step is not None:
                parsed.append((j, step))
        if len(parsed) != len(raw_steps):
            return None
        ids: dict[str, int] = {}
        for j, step in parsed:
            step_id = getattr(step, "id", None)
            if step_id is not None:
                if step_id in ids or step_id in ("next", "end"):
                    self.problem((*where, j, "id"), f"{_path_label((*where, j))}.id: "
                                                    f"{'duplicate step id' if step_id in ids else 'reserved word'} {step_id!r}")
                ids[step_id] = j
        count = len(parsed)

        def target(j: int, name: str, key: str) -> int:
            if name == "next":
                return j + 1
            if name == "end":
                return count
            if name not in ids:
                self.problem((*where, j, key), f"{_path_label((*where, j))}.{key}: no step with id {name!r} "
                                               f"(give a step `id: {name}`, or use next or end){_suggest(name, list(ids))}")
                return count
            return ids[name]

        steps: list[nurture.Step] = []
        ok = True
        for j, step in parsed:
            step_id = getattr(step, "id", None) or str(j + 1)
            if isinstance(step, EmailStepIn):
                if step.email not in templates:
                    self.problem((*where, j, "email"), f"{_path_label((*where, j))}.email: no email template "
                                                       f"{step.email!r} under `emails`{_suggest(step.email, list(templates))}")
                steps.append(nurture.SendEmail(step.email, step_id))
            elif isinstance(step, WaitStepIn):
                found = DURATION.match(step.wait)
                if found is None:
                    self.problem((*where, j, "wait"), f"{_path_label((*where, j))}.wait: {step.wait!r} is not a "
                                                      "duration (e.g. 30m, 12h, 3d, 2w)")
                    ok = False
                    continue
                amount, unit = float(found.group(1)), found.group(2)[0]
                duration = timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})
                if not timedelta(minutes=1) <= duration <= timedelta(days=366):
                    self.problem((*where, j, "wait"), f"{_path_label((*where, j))}.wait: between 1 minute and a year")
                steps.append(nurture.Wait(duration, step_id))
            elif isinstance(step, BranchStepIn):
                when = compile_((*where, j, "if"), step.if_, BRANCH_NAMES)
                then, otherwise = target(j, step.then, "then"), target(j, step.else_, "else")
                if when is None:
                    ok = False
                    continue
                steps.append(nurture.Branch(when, then, otherwise, step_id))
        return tuple(steps) if ok else None

    def _template(self, where: Path_, source: str, *, html: bool = False) -> TextTemplate | None:
        try:
            return HtmlTemplate(source) if html else TextTemplate(source)
        except TemplateError as error:
            line = getattr(error, "lineno", None)
            self.problem(where, f"{_path_label(where)}: invalid template{f' (line {line} of it)' if line else ''}: "
                                f"{getattr(error, 'message', None) or error}")
            return None

    def _fields(self, spec: PlaybookIn) -> dict[str, domain.FieldSpec]:
        fields = {standard.name: standard for standard in domain.STANDARD_FIELDS}
        declared: set[str] = set()
        for index, item in self._items(FieldIn, spec.fields, ("fields",)):
            if item.name in declared:
                self.problem(("fields", index, "name"), f"fields[{index}].name: duplicate field {item.name!r}")
            declared.add(item.name)
            if item.name in LEAD_EXTRA_KEYS:
                self.problem(("fields", index, "name"),
                             f"fields[{index}].name: {item.name!r} is reserved (email is the key of every lead; "
                             "email_domain and stage are given by LeadRelay)")
            if item.type == "enum" and not item.values:
                self.problem(("fields", index, "values"), f"fields[{index}]: an enum field needs `values`")
            if item.type != "enum" and item.values:
                self.problem(("fields", index, "values"), f"fields[{index}]: only enum fields have `values`")
            base = fields.get(item.name)
            fields[item.name] = domain.FieldSpec(
                name=item.name,
                type=item.type,
                values=tuple(item.values),
                aliases=tuple(snake_name(a) for a in item.aliases) or (base.aliases if base else ()),
                label=item.label or (base.label if base else item.name.replace("_", " ").capitalize()),
            )
        return fields


def _sample(fields: dict[str, domain.FieldSpec]) -> dict[str, Any]:
    """A lead with every field filled, to try each condition once at load: a condition that
    gives a number instead of true/false, or mixes types, is caught here, not never-firing later."""
    typical = {"string": "sample", "number": 1, "boolean": True, "date": "2026-01-01"}
    lead: dict[str, Any] = {
        name: spec.values[0] if spec.type == "enum" and spec.values else typical[spec.type]
        for name, spec in fields.items()
    }
    lead.update(email="someone@example.com", email_domain="example.com", stage="lead")
    account = {"id": 1, "domain": "example.com", "name": "Example", "is_target": True, "owner": "rep@example.com",
               "traits": {}}
    return {
        "lead": lead, "account": account, "fit": 1.0, "engagement": 1.0, "total": 2.0, "stage": "lead", "p_win": 0.5,
        "event": {"name": "page_view", "type": "page"}, "properties": {},
    }


def _path_label(where: Path_) -> str:
    label = ""
    for part in where:
        label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else str(part))
    return label


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""

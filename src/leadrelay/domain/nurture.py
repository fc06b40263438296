"""Nurture sequences: drip emails, waits and branches that make leads ready for sales.

A sequence is data from the playbook: how a lead enters it (a new lead, a hand-back, entering a
stage, a segment, an automation, or by hand), its steps (send an email template, wait, branch on a
condition), and when a lead leaves it early. The rules that keep nurture mail away from people it
is not meant for are here, pure: a lead in a sales stage, a customer, a disqualified lead or a
suppressed address (unsubscribed, bounced, complained) gets none. So are the per-domain and
global rate limits and the quiet hours in the lead's time zone. Time is an argument.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from leadrelay.domain.errors import DomainError, NotFound

if TYPE_CHECKING:
    from leadrelay.domain.automations import Template
    from leadrelay.domain.model import Lead
    from leadrelay.domain.playbook import Condition, Playbook

TRIGGERS = ("new_lead", "hand_back", "stage_entered", "segment", "manual")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "manual")
# why an enrollment ended early; "mql" and "sales" count as MQLs the sequence produced
EXIT_REASONS = ("mql", "sales", "customer", "disqualified", "unsubscribed", "bounced", "complained", "suppressed",
                "merged", "condition", "removed", "template_error")
HANDED_TO_SALES = frozenset({"mql", "sales"})


class SequenceNotFound(NotFound):
    code = "sequence_not_found"


class EnrollmentNotFound(NotFound):
    code = "enrollment_not_found"


class EnrollmentRefused(DomainError):
    """The lead may not enter the sequence now; the message says why."""

    code = "enrollment_refused"


# --- what the playbook says -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    """An email marketing wrote: subject, plain text and (optionally) HTML, each a template reading
    `lead`, `account` and `sequence`; a missing value renders empty (or its `default(...)`)."""

    name: str
    subject: Template
    text: Template
    html: Template | None = None


@dataclass(frozen=True, slots=True)
class SendEmail:
    template: str
    id: str


@dataclass(frozen=True, slots=True)
class Wait:
    duration: timedelta
    id: str


@dataclass(frozen=True, slots=True)
class Branch:
    """Go on at step `then` when the condition holds, else at `otherwise` (an index; the number of
    steps means the end of the sequence)."""

    when: Condition
    then: int
    otherwise: int
    id: str


Step = SendEmail | Wait | Branch


@dataclass(frozen=True, slots=True)
class Trigger:
    on: str  # one of TRIGGERS
    stage: str | None = None  # stage_entered: which stage
    when: Condition | None = None  # only leads for which this holds (segment: required)


@dataclass(frozen=True, slots=True)
class Sequence:
    id: str
    name: str
    steps: tuple[Step, ...]
    trigger: Trigger = Trigger("manual")
    kind: str = "nurture"  # a lead is in at most one sequence of a kind at once
    exit_when: Condition | None = None  # a lead for which this holds leaves the sequence
    reenroll: bool = False  # may a lead go through it again, once its last run has ended?
    reenroll_after: timedelta | None = None  # ... but not sooner than this after that end

    def step_label(self, index: int) -> str:
        if 0 <= index < len(self.steps):
            step = self.steps[index]
            what = f"email {step.template}" if isinstance(step, SendEmail) else (
                f"wait {_duration_text(step.duration)}" if isinstance(step, Wait) else f"if {step.when.source}")
            return f"{index + 1}. {what}"
        return "end"


def _duration_text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- enrollments --------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Enrollment:
    """A lead's run through a sequence: the step it is at and when it is looked at again."""

    lead_id: int
    sequence: str
    kind: str
    enrolled_at: datetime
    next_at: datetime | None
    trigger: str = "manual"
    step: int = 0  # the index of the next step to run
    status: str = "active"  # active, completed or exited
    ended_at: datetime | None = None
    exit_reason: str | None = None
    last_email_step: int | None = None  # the step of the last email sent (what an exit is credited to)
    id: int | None = None
    dirty: bool = False

    @property
    def active(self) -> bool:
        return self.status == "active"

    def exit(self, reason: str, at: datetime) -> None:
        self.status, self.exit_reason, self.ended_at, self.next_at, self.dirty = "exited", reason, at, None, True

    def complete(self, at: datetime) -> None:
        self.status, self.ended_at, self.next_at, self.dirty = "completed", at, None, True


def stop_reason(lead: Lead, playbook: Playbook, suppressed: str | None = None) -> str | None:
    """Why this lead must get no nurture mail now (None: it may). A lead in a sales stage (an MQL
    or beyond), a customer (now or ever), a disqualified or lost lead, a lead merged into another and
    a suppressed address get none."""
    if suppressed is not None:
        return suppressed if suppressed in EXIT_REASONS else "suppressed"
    if lead.merged_into is not None:
        return "merged"
    stage, highest = playbook.stages.get(lead.stage), playbook.stages.get(lead.highest_stage)
    if (stage is not None and stage.outcome == "won") or (highest is not None and highest.outcome == "won"):
        return "customer"
    if stage is None:
        return "disqualified"  # a stage the playbook no longer has: do not guess
    if stage.team == "sales":
        return "mql" if lead.stage == playbook.mql_stage else "sales"
    if stage.outcome is not None:
        return "disqualified"
    return None


def refusal(sequence: Sequence, lead: Lead, playbook: Playbook, *, now: datetime, suppressed: str | None,
            active_kinds: Collection[str], past: Collection[Enrollment]) -> str | None:
    """Why `lead` may not enter `sequence` now (None: it may). `active_kinds`: the kinds of the
    sequences it is in; `past`: its earlier runs through this sequence."""
    reason = stop_reason(lead, playbook, suppressed)
    if reason is not None:
        return f"gets no nurture mail ({reason})"
    if sequence.kind in active_kinds:
        return f"already in a {sequence.kind} sequence (one at a time)"
    if past:
        if any(run.active for run in past):
            return "already in this sequence"
        if not sequence.reenroll:
            return "went through this sequence before (it does not re-enroll)"
        last_end = max(run.ended_at or run.enrolled_at for run in past)
        if sequence.reenroll_after is not None and now < last_end + sequence.reenroll_after:
            return f"left this sequence less than {_duration_text(sequence.reenroll_after)} ago"
    return None


def enroll(sequence: Sequence, lead_id: int, now: datetime, trigger: str) -> Enrollment:
    return Enrollment(lead_id=lead_id, sequence=sequence.id, kind=sequence.kind, enrolled_at=now, next_at=now,
                      trigger=trigger, dirty=True)


# --- walking the steps --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an enrollment does now: send an email (then go on at `step`), wait until `at`, or end."""

    action: Literal["send", "wait", "complete"]
    step: int
    at: datetime | None = None
    template: str | None = None
    email_step: int | None = None


def walk(sequence: Sequence, step: int, context: Mapping[str, Any], now: datetime) -> Outcome:
    """From `step`, follow branches (conditions read `context`) to the next email, wait or the end."""
    steps = sequence.steps
    for _ in range(len(steps) + 1):  # the playbook refuses a loop without a wait: this always ends
        if step >= len(steps):
            return Outcome("complete", len(steps))
        current = steps[step]
        if isinstance(current, SendEmail):
            return Outcome("send", step + 1, now, current.template, step)
        if isinstance(current, Wait):
            return Outcome("wait", step + 1, now + current.duration)
        step = current.then if current.when(context) else current.otherwise
    return Outcome("complete", len(steps))


def after_send(sequence: Sequence, step: int, now: datetime) -> Outcome | None:
    """Once an email went out, a wait (or the end) right after it starts at once; None when the next
    step is another email or a branch (it runs on the next round, when the email may have been read)."""
    if step >= len(sequence.steps):
        return Outcome("complete", step)
    current = sequence.steps[step]
    if isinstance(current, Wait):
        return Outcome("wait", step + 1, now + current.duration)
    return None


def loops_without_wait(steps: tuple[Step, ...]) -> list[int]:
    """The steps on a loop that never waits (a lead would be mailed again and again): [] when none."""
    edges: dict[int, list[int]] = {}
    for index, step in enumerate(steps):
        if isinstance(step, Wait):
            continue
        targets = [step.then, step.otherwise] if isinstance(step, Branch) else [index + 1]
        edges[index] = [t for t in targets if t < len(steps) and not isinstance(steps[t], Wait)]
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    path: list[int] = []

    def visit(node: int) -> list[int]:
        state[node] = 1
        path.append(node)
        for target in edges.get(node, []):
            if state.get(target) == 1:
                return path[path.index(target):]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return []

    for start in edges:
        if start not in state and (found := visit(start)):
            return found
    return []


# --- quiet hours and rate limits --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No nurture mail between `start` and `end` in the lead's time zone (e.g. 21:00-08:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """"21:00-08:00" (None for an empty text); ValueError when it is not that form."""
        text = text.strip()
        if not text:
            return None
        start, sep, end = text.partition("-")
        if not sep:
            raise ValueError(f"quiet hours {text!r}: expected HH:MM-HH:MM, e.g. 21:00-08:00")
        parsed = cls(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
        if parsed.start == parsed.end:
            raise ValueError(f"quiet hours {text!r}: start and end are the same")
        return parsed

    def quiet_at(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def next_allowed(self, now: datetime, zone: tzinfo) -> datetime:
        """`now` when mail may go now; else the end of these quiet hours, in `zone`."""
        local = now.astimezone(zone)
        moment = local.time().replace(tzinfo=None)
        if not self.quiet_at(moment):
            return now
        day = local.date()
        if self.start > self.end and moment >= self.start:  # evening: quiet until tomorrow morning
            day += timedelta(days=1)
        ends = datetime.combine(day, self.end, tzinfo=zone).astimezone(UTC)
        return max(ends, now)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """At most `per_window` nurture emails in each window, and `per_domain` to one recipient domain
    (None: no limit)."""

    per_window: int | None = None
    per_domain: int | None = None
    window: timedelta = timedelta(minutes=1)

    def window_start(self, now: datetime) -> datetime:
        seconds = self.window.total_seconds()
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return epoch + timedelta(seconds=(now - epoch).total_seconds() // seconds * seconds)


class SendBudget:
    """What may still be sent in the current window, given what already was."""

    def __init__(self, limits: RateLimits, now: datetime, sent: int = 0,
                 sent_by_domain: Mapping[str, int] | None = None) -> None:
        self.limits = limits
        self.sent = sent
        self.by_domain = dict(sent_by_domain or {})
        self.next_window = limits.window_start(now) + limits.window

    def take(self, domain: str) -> bool:
        """Count one email to `domain` if the limits allow it; False when they do not."""
        limits = self.limits
        if limits.per_window is not None and self.sent >= limits.per_window:
            return False
        if limits.per_domain is not None and self.by_domain.get(domain, 0) >= limits.per_domain:
            return False
        self.sent += 1
        self.by_domain[domain] = self.by_domain.get(domain, 0) + 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.limits.per_window is not None and self.sent >= self.limits.per_window

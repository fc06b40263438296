"""The SLA: what sales owes marketing on each deal, measured by clocks that are met or breached.

A commitment says what must happen within how long (business or wall time): accept or reject
the hand-off, touch the lead a first time, make N attempts, or not leave a deal idle in a stage.
Each starts a clock on a deal at the right moment; the clock is met by the right action, and is
breached at its due time whether or not anyone touches the deal (the worker checks due clocks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from leadrelay.domain.business_time import WALL_CLOCK, Calendar
from leadrelay.domain.model import ATTEMPT_KINDS, Touch

if TYPE_CHECKING:
    from leadrelay.domain.deals import Deal
    from leadrelay.domain.playbook import Condition

MEASURES: tuple[str, ...] = ("accept", "first_touch", "attempts", "stage_time")


@dataclass(frozen=True, slots=True)
class Commitment:
    name: str
    measure: str  # one of MEASURES
    within: timedelta
    business: bool = True  # counts business hours (paused outside them), or wall time
    teams: frozenset[str] = frozenset()  # the teams it binds; empty: every team
    stage: str | None = None  # stage_time: the stage a deal must not idle in
    attempts: int = 1  # attempts: how many
    warn_at: float = 0.75  # warn when this share of the allowed time has passed
    notify_manager: bool = False  # on breach: email the team's manager
    reassign: bool = False  # on breach: give the deal to the next rep by the routing rules
    restart_on_reassign: bool = True  # a new owner gets the full time again
    when: Condition | None = None  # a segment: only deals whose lead this holds for (reads `lead`)

    def binds(self, deal: Deal) -> bool:
        if self.teams and deal.team not in self.teams:
            return False
        return self.when is None or self.when({"lead": deal.lead.context()})


@dataclass(frozen=True, slots=True)
class MarketingCommitment:
    """What marketing owes sales: enough MQLs (per week or month, optionally from one source),
    good enough that sales accepts (MQL → SAL) or qualifies (→ SQL) a share of them."""

    name: str
    kind: str  # mql_volume, acceptance_rate or sql_rate
    target: float  # MQLs per period, or a share between 0 and 1
    per: str = "week"  # mql_volume: week or month
    source: str | None = None  # only MQLs from this source


@dataclass(frozen=True, slots=True)
class Sla:
    commitments: tuple[Commitment, ...] = ()
    calendars: Mapping[str, Calendar] = field(default_factory=dict)  # business hours by team id
    default_calendar: Calendar = WALL_CLOCK  # for teams without their own
    marketing: tuple[MarketingCommitment, ...] = ()

    def calendar(self, commitment: Commitment, team: str) -> Calendar:
        if not commitment.business:
            return WALL_CLOCK
        return self.calendars.get(team, self.default_calendar)


@dataclass(slots=True, eq=False)
class Clock:
    deal: Deal
    commitment: str
    measure: str
    started_at: datetime
    due_at: datetime
    warn_at: datetime
    owner: str | None = None  # who owes it (the deal's owner when it started)
    status: str = "running"  # running, met, breached, stopped (no longer owed: e.g. the deal was closed)
    ended_at: datetime | None = None  # met, breached or stopped at
    warned_at: datetime | None = None
    id: int | None = None
    dirty: bool = True

    @property
    def running(self) -> bool:
        return self.status == "running"


def start(commitment: Commitment, deal: Deal, at: datetime, sla: Sla) -> Clock:
    """A clock for `commitment` on `deal` from `at`; due after the allowed (business) time."""
    calendar = sla.calendar(commitment, deal.team)
    return Clock(
        deal=deal, commitment=commitment.name, measure=commitment.measure, started_at=at, owner=deal.owner,
        due_at=calendar.add(at, commitment.within), warn_at=calendar.add(at, commitment.within * commitment.warn_at),
    )


def on_hand_off(deal: Deal, at: datetime, sla: Sla) -> list[Clock]:
    """The clocks a new deal starts: accept, first touch, attempts, and its stage's idle clock."""
    return [start(c, deal, at, sla) for c in sla.commitments if c.binds(deal)
            and (c.measure in ("accept", "first_touch", "attempts") or c.stage == deal.stage)]


def on_move(clocks: Iterable[Clock], deal: Deal, from_stage: str | None, at: datetime, sla: Sla) -> list[Clock]:
    """The deal moved (or closed): an answer meets the accept clock; leaving a stage meets its idle
    clock; a closed deal owes nothing more. New clocks for the stage it entered."""
    for clock in clocks:
        if not clock.running:
            continue
        if clock.measure == "accept" or (clock.measure == "stage_time" and deal.stage != from_stage):
            _end(clock, "met", at)
        elif not deal.is_open:
            _end(clock, "met" if clock.measure == "attempts" else "stopped", at)
    if not deal.is_open:
        return []
    return [start(c, deal, at, sla) for c in sla.commitments
            if c.binds(deal) and c.measure == "stage_time" and c.stage == deal.stage]


def on_touch(clocks: Iterable[Clock], touch: Touch, attempts_so_far: int, sla: Sla) -> None:
    """A touch meets the first-touch clock, and the attempts clock once enough attempts are made
    (`attempts_so_far` counts this touch). Touches logged before acceptance count too."""
    if touch.kind not in ATTEMPT_KINDS:
        return
    wanted = {c.name: c.attempts for c in sla.commitments if c.measure == "attempts"}
    for clock in clocks:
        if not clock.running or touch.at < clock.started_at:
            continue
        if clock.measure == "first_touch" or (clock.measure == "attempts"
                                              and attempts_so_far >= wanted.get(clock.commitment, 1)):
            _end(clock, "met", touch.at)


def on_reassign(clocks: Iterable[Clock], deal: Deal, at: datetime, sla: Sla, *,
                breached: Clock | None = None) -> list[Clock]:
    """A new owner: commitments that restart on reassignment stop their clock and start a new one
    for the new owner (so does the clock whose breach caused the reassignment)."""
    restarting = {c.name: c for c in sla.commitments if c.restart_on_reassign and c.binds(deal)}
    fresh = []
    for clock in clocks:
        commitment = restarting.get(clock.commitment)
        if commitment is None or clock.measure not in ("accept", "first_touch"):
            continue
        if clock.running:
            _end(clock, "stopped", at)
        elif clock is not breached:
            continue
        fresh.append(start(commitment, deal, at, sla))
    return fresh


def due(clock: Clock, now: datetime) -> str | None:
    """What a running clock has come to at `now`: "breach", "warning", or None."""
    if not clock.running:
        return None
    if now >= clock.due_at:
        _end(clock, "breached", clock.due_at)
        return "breach"
    if clock.warned_at is None and now >= clock.warn_at:
        clock.warned_at, clock.dirty = now, True
        return "warning"
    return None


def _end(clock: Clock, status: str, at: datetime) -> None:
    clock.status, clock.ended_at, clock.dirty = status, at, True


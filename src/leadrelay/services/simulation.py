"""Backtest: replay stored history under a candidate playbook and under the one in force, side by
side, without touching live data.

The replay is in memory, with the domain's own functions (`new_lead`, `apply_event`): every lead
created since a date starts again from nothing and its stored events are applied in time order
under each playbook, until the lead is handed to sales (or disqualified). Nothing is written.
What sales did after a real hand-off (accepting, winning) is known only for leads that were
really handed off; it is counted as such ("known outcome"), never guessed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from leadrelay.adapters.tables import deals, leads
from leadrelay.domain.model import Lead
from leadrelay.domain.playbook import Playbook
from leadrelay.domain.prediction import p_win
from leadrelay.domain.processing import apply_event, new_lead
from leadrelay.services.prediction import (
    CHUNK,
    MAX_WORKERS,
    events_of,
    forked,
    labels,
    reading,
)

Progress = Callable[[int, int], None]
HANDED_OFF, DISQUALIFIED, NOT_YET = "handed off", "disqualified", "not handed off"
WORKING_DAYS = 5  # a per-day new-deal limit gives this many days of capacity a week


@dataclass
class Outcome:
    status: str = NOT_YET
    at: datetime | None = None
    by: str | None = None  # the rule that moved it
    peak_total: float = 0.0  # the highest fit + engagement it reached (before any hand-off)
    peak_p_win: float | None = None  # p_win at that moment, when a model is in use


@dataclass
class Side:
    """One playbook's replay."""

    name: str
    outcomes: dict[int, Outcome] = field(default_factory=dict)

    def handed_off(self) -> dict[int, Outcome]:
        return {lead_id: o for lead_id, o in self.outcomes.items() if o.status == HANDED_OFF}


@dataclass
class Figures:
    hand_offs: int
    per_week: float
    per_rep_week: float | None
    capacity_per_rep_week: float | None
    known: int  # of the hand-offs, how many have a known outcome (really handed off, then closed or accepted)
    accepted: int
    won: int
    sla_clocks_per_week: float
    disqualified: int

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.known if self.known else None

    @property
    def win_rate(self) -> float | None:
        return self.won / self.known if self.known else None


@dataclass
class Change:
    lead_id: int
    email: str
    current: str
    candidate: str


@dataclass
class Simulation:
    since: datetime
    until: datetime
    leads: int
    events: int
    current: Figures
    candidate: Figures
    weeks: list[tuple[str, int, int]]  # (week starting, hand-offs current, hand-offs candidate)
    changes: list[Change]
    changed: int
    seconds: float = 0.0


def reps_and_capacity(playbook: Playbook) -> tuple[int, float | None]:
    """How many reps take hand-offs, and how many new deals a week they can take in all (None when
    the playbook sets no limit on new deals)."""
    reps = 0
    capacity = 0.0
    limited = True
    factor = WORKING_DAYS if playbook.routing.period == "day" else 1
    for team in playbook.routing.teams.values():
        for rep in team.reps:
            reps += 1
            limit = rep.max_new_deals if rep.max_new_deals is not None else team.max_new_deals
            if limit is None:
                limited = False
            else:
                capacity += limit * factor
    return reps, (capacity if limited and reps else None)


def _sales(playbook: Playbook, stage: str) -> bool:
    found = playbook.stages.get(stage)
    return found is not None and found.team == "sales"


def replay_lead(lead: Lead, history: Sequence, playbook: Playbook, until: datetime,
                with_model: bool = False) -> Outcome:
    """Apply a lead's events under `playbook` until it is handed off or disqualified."""
    outcome = Outcome()
    if lead.stage == playbook.disqualify_stage:
        return Outcome(DISQUALIFIED, lead.created_at, lead.history[-1].by if lead.history else None)
    for event in history:
        if event.timestamp > until:
            break
        event.lead, event.points = None, 0.0
        apply_event(lead, event, playbook)
        total = lead.fit + lead.engagement.total
        if total > outcome.peak_total:
            outcome.peak_total = total
            if with_model:
                outcome.peak_p_win = p_win(lead, playbook, event.timestamp)
        if len(lead.history) > 1:
            change = lead.history[-1]
            if _sales(playbook, change.to_stage):
                outcome.status, outcome.at, outcome.by = HANDED_OFF, change.at, change.by
                break
            if change.to_stage == playbook.disqualify_stage:
                outcome.status, outcome.at, outcome.by = DISQUALIFIED, change.at, change.by
                break
    return outcome


class _Never:
    """A rule that never fires (to see how high every lead's score goes)."""

    source = "false"
    variables: frozenset[str] = frozenset()

    def __call__(self, context: object) -> bool:
        return False


def replay(engine: Engine, playbooks: Sequence[Playbook], since: datetime, until: datetime, *,
           progress: Progress | None = None, with_model: bool = False,
           limit: int | None = None, workers: int | None = None,
           chunk: int = CHUNK) -> tuple[list[Side], dict[int, str], int]:
    """Each playbook's outcome for every lead created in [since, until]; and the leads' emails.

    Leads are independent, so a long history is replayed by several processes at once (one per
    core, `workers` to choose), each on its own slices of leads with the same functions: the
    outcomes are the same as one process would find."""
    sides = [Side(playbook.name) for playbook in playbooks]
    with reading(engine) as connection:
        query = (select(leads.c.id, leads.c.email, leads.c.created_at)
                 .where(leads.c.merged_into.is_(None), leads.c.created_at >= since, leads.c.created_at <= until)
                 .order_by(leads.c.id.desc() if limit else leads.c.id))
        if limit:  # the newest leads
            query = query.limit(limit)
        rows = [tuple(row) for row in connection.execute(query)]
    emails = {row[0]: row[1] for row in rows}
    chunks = [rows[start:start + chunk] for start in range(0, len(rows), chunk)]
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if len(rows) >= PARALLEL_FROM else 1
    workers = min(workers, len(chunks))
    job = _Job(engine, tuple(playbooks), until, with_model)
    count = 0
    done = 0
    for outcomes, events in forked(_replay_chunk, engine, job, chunks, workers):
        for side, found in zip(sides, outcomes, strict=True):
            side.outcomes.update(found)
        count += events
        done += len(outcomes[0])
        if progress:
            progress(done, len(rows))
    for side in sides:  # in the leads' order, whichever process finished first
        side.outcomes = {row[0]: side.outcomes[row[0]] for row in rows}
    return sides, emails, count


PARALLEL_FROM = 4 * CHUNK  # fewer leads than this: one process (starting others costs more)


@dataclass(frozen=True)
class _Job:
    engine: Engine
    playbooks: tuple[Playbook, ...]
    until: datetime
    with_model: bool


def _replay_chunk(job: _Job, chunk: Sequence[tuple[int, str, datetime]]) -> tuple[list[dict[int, Outcome]], int]:
    outcomes: list[dict[int, Outcome]] = [{} for _ in job.playbooks]
    count = 0
    with reading(job.engine) as connection:
        histories = events_of(connection, [row[0] for row in chunk])
    for lead_id, email, created_at in chunk:
        history = histories[lead_id]
        count += len(history)
        for found, playbook in zip(outcomes, job.playbooks, strict=True):
            created = min(created_at, history[0].timestamp) if history else created_at
            lead = new_lead(email, playbook, created)
            lead.id = lead_id
            found[lead_id] = replay_lead(lead, history, playbook, job.until, job.with_model)
    return outcomes, count


def known_outcomes(engine: Engine, playbook: Playbook, lead_ids: set[int]) -> tuple[set[int], set[int], set[int]]:
    """Of these leads: those with a known outcome, those sales accepted, those won (from stored deals)."""
    accept_rank = playbook.rank(playbook.accept_stage)
    with reading(engine) as connection:
        closed = labels(connection)
        accepted: set[int] = set()
        for lead_id, highest in connection.execute(select(leads.c.id, leads.c.highest_stage)
                                                   .where(leads.c.id.in_(select(deals.c.lead_id)))):
            if lead_id in lead_ids and playbook.rank(highest) >= accept_rank:
                accepted.add(lead_id)
    known = {lead_id for lead_id in lead_ids if lead_id in closed} | accepted
    won = {lead_id for lead_id in lead_ids if closed.get(lead_id, (None, 0))[1] == 1}
    return known, accepted & known, won


def _figures(side: Side, playbook: Playbook, weeks: float, known: set[int], accepted: set[int],
             won: set[int]) -> Figures:
    handed = side.handed_off()
    reps, capacity = reps_and_capacity(playbook)
    per_week = len(handed) / weeks
    mine_known = {lead_id for lead_id in handed if lead_id in known}
    starting = [c for c in playbook.sla.commitments if c.measure in ("first_touch", "accept", "response",
                                                                        "first_response")]
    clocks = len(starting) or len(playbook.sla.commitments)
    return Figures(
        hand_offs=len(handed), per_week=round(per_week, 1),
        per_rep_week=round(per_week / reps, 2) if reps else None,
        capacity_per_rep_week=round(capacity / reps, 2) if capacity is not None and reps else None,
        known=len(mine_known), accepted=len(mine_known & accepted), won=len(mine_known & won),
        sla_clocks_per_week=round(per_week * clocks, 1),
        disqualified=sum(1 for o in side.outcomes.values() if o.status == DISQUALIFIED),
    )


def simulate(engine: Engine, current: Playbook, candidate: Playbook, *, since: datetime, until: datetime,
             progress: Progress | None = None, changes_shown: int = 50, limit: int | None = None,
             workers: int | None = None, chunk: int = CHUNK) -> Simulation:
    import time

    started = time.perf_counter()
    sides, emails, count = replay(engine, [current, candidate], since, until, progress=progress, limit=limit,
                                  workers=workers, chunk=chunk)
    ids = set(sides[0].handed_off()) | set(sides[1].handed_off())
    known, accepted, won = known_outcomes(engine, current, ids)
    weeks = max((until - since).total_seconds() / (7 * 86400), 1 / 7)
    by_week: dict[str, list[int]] = {}
    for index, side in enumerate(sides):
        for outcome in side.handed_off().values():
            assert outcome.at is not None
            monday = (outcome.at - timedelta(days=outcome.at.weekday())).date().isoformat()
            by_week.setdefault(monday, [0, 0])[index] += 1
    changes = []
    changed = 0
    for lead_id, before in sides[0].outcomes.items():
        after = sides[1].outcomes[lead_id]
        if before.status != after.status:
            changed += 1
            if len(changes) < changes_shown:
                changes.append(Change(lead_id, emails[lead_id], before.status, after.status))
    return Simulation(
        since=since, until=until, leads=len(sides[0].outcomes), events=count,
        current=_figures(sides[0], current, weeks, known, accepted, won),
        candidate=_figures(sides[1], candidate, weeks, known, accepted, won),
        weeks=[(week, *counts) for week, counts in sorted(by_week.items())],  # type: ignore[misc]
        changes=changes, changed=changed, seconds=round(time.perf_counter() - started, 2),
    )


# --- the MQL threshold for capacity -------------------------------------------------------------

@dataclass
class ThresholdRow:
    threshold: float
    per_week: float
    per_rep_week: float | None
    expected_wins_per_week: float
    within_capacity: bool | None


@dataclass
class Capacity:
    reps: int
    capacity_per_week: float | None
    weeks: float
    leads: int
    rows: list[ThresholdRow]
    recommended: ThresholdRow | None


def capacity_threshold(engine: Engine, playbook: Playbook, *, since: datetime, until: datetime,
                       deals_per_rep_week: float | None = None, progress: Progress | None = None,
                       limit: int | None = None) -> Capacity:
    """For each threshold T on the total score: how many leads a week would reach it (hand-offs
    under `total >= T`), and the wins to expect from them (the sum of their p_win at that moment).
    Recommended: the threshold with the most expected wins whose volume fits sales capacity —
    reps × new deals per rep per week (the playbook's `max_new_deals`, or `deals_per_rep_week`)."""
    if playbook.win_model is None:
        raise ValueError("the capacity threshold weighs leads by p_win: train a model first (leadrelay model train)")
    # replay with no MQL rule and no fast track: every lead shows the highest score it reaches
    open_ended = replace(playbook, mql_rule=_Never(), fast_track=())
    sides, _, _ = replay(engine, [open_ended], since, until, progress=progress, with_model=True, limit=limit)
    outcomes = [o for o in sides[0].outcomes.values() if o.status != DISQUALIFIED]
    reps, capacity = reps_and_capacity(playbook)
    if deals_per_rep_week is not None:
        capacity = reps * deals_per_rep_week
    weeks = max((until - since).total_seconds() / (7 * 86400), 1 / 7)
    rows = []
    top = max((o.peak_total for o in outcomes), default=0.0)
    for threshold in range(0, math.ceil(top) + 5, 5):
        reached = [o for o in outcomes if o.peak_total >= threshold]
        per_week = len(reached) / weeks
        wins = sum(o.peak_p_win or 0.0 for o in reached) / weeks
        rows.append(ThresholdRow(float(threshold), round(per_week, 1), round(per_week / reps, 2) if reps else None,
                                 round(wins, 2), None if capacity is None else per_week <= capacity))
    fitting = [row for row in rows if row.within_capacity]
    recommended = max(fitting, key=lambda row: (row.expected_wins_per_week, -row.threshold)) if fitting else None
    return Capacity(reps, capacity, round(weeks, 1), len(outcomes), rows, recommended)


def capacity_chart(result: Capacity) -> Any:
    """The trade-off as a chart: hand-offs and expected wins a week by threshold, against capacity."""
    from leadrelay.reports.charts import line

    return line([f"{row.threshold:g}" for row in result.rows],
                {"hand-offs / week": [row.per_week for row in result.rows],
                 "expected wins / week": [row.expected_wins_per_week for row in result.rows]},
                title="MQL threshold (total score) against sales capacity", name="capacity-threshold",
                target=result.capacity_per_week, target_label="capacity", value_format=lambda v: f"{v:,.1f}",
                axis_label="per week")

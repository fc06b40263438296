"""The funnel report: of a cohort of leads, how many reached each stage, the conversion from each
stage to the next and from lead to customer, and where the others leaked out (recycled,
disqualified, lost) and why.

- **Cohort**: the leads created in the period (`cohort="created"`), or the leads that entered a
  given funnel stage in the period (`cohort="mql"`, ...; a lead that skipped the stage entered it
  when it skipped it).
- **Reached** counts each lead once, by the highest stage it ever reached (as of now): a lead
  handed back and recycled still counts as having reached MQL, and a lead fast-tracked from lead
  to SAL counts as having reached MQL too.
- **Conversion** from a stage is reached(next) / reached(stage); **end to end** is
  reached(won stage) / the cohort.
- **Leakage** counts the moves of the cohort's leads out of the funnel (into recycled,
  disqualified, lost, ...), by the stage they left and the reason given; a lead handed back twice
  counts twice.
- **Now in** is where the cohort's leads are today: the funnel stages still open, and the side
  stages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, func, select

from leadrelay.adapters.analytics import Funnel
from leadrelay.adapters.tables import lead_facts, stage_reached, stage_spans
from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.common import BREAKDOWNS, group_label
from leadrelay.reports.export import Table
from leadrelay.reports.periods import Period
from leadrelay.reports.stats import rate


@dataclass
class StageCount:
    stage: str
    name: str
    reached: int  # leads of the cohort whose highest stage is this one or beyond
    conversion: float | None  # reached here / reached at the stage before (None for the first)
    now_in: int  # leads of the cohort in this stage now


@dataclass
class Leak:
    stage: str  # the stage left
    to: str  # recycled, disqualified, lost, ...
    reason: str | None
    count: int


@dataclass
class FunnelGroup:
    group: str | None  # the breakdown's value; None for every lead of the cohort
    leads: int
    stages: list[StageCount]
    end_to_end: float | None  # reached the won stage / the cohort
    won_value: float
    leakage: list[Leak] = field(default_factory=list)
    side: dict[str, int] = field(default_factory=dict)  # leads now in each stage off the funnel


@dataclass
class FunnelReport:
    period: dict[str, str]
    cohort: str
    breakdown: str | None
    total: FunnelGroup
    groups: list[FunnelGroup]

    def tables(self) -> dict[str, Table]:
        """The report as flat tables (for CSV): stages, leakage; each row names its group."""
        everyone = [self.total, *self.groups]
        return {
            "stages": Table.of(("group", "stage", "name", "reached", "conversion", "now_in", "end_to_end"), (
                (g.group or "(all)", s.stage, s.name, s.reached, s.conversion, s.now_in, g.end_to_end)
                for g in everyone for s in g.stages)),
            "leakage": Table.of(("group", "stage", "to", "reason", "count"), (
                (g.group or "(all)", leak.stage, leak.to, leak.reason, leak.count)
                for g in everyone for leak in g.leakage)),
        }


def check_breakdown(breakdown: str | None, allowed: tuple[str, ...] = tuple(BREAKDOWNS)) -> str | None:
    if breakdown in (None, "", "none"):
        return None
    if breakdown not in allowed:
        raise InvalidInput(f"breakdown: {breakdown!r} is not one of {', '.join(allowed)}", "invalid_breakdown")
    return breakdown


def cohort_query(playbook: Playbook, period: Period, cohort: str) -> tuple[Select[Any], str]:
    """The cohort's lead_facts rows (a select to add columns to), and the first stage shown."""
    if cohort == "created":
        return (select().select_from(lead_facts)
                .where(lead_facts.c.created_at >= period.start, lead_facts.c.created_at < period.end),
                playbook.entry_stage)
    stage = playbook.stages.get(cohort)
    if stage is None or stage.rank is None:
        funnel = [s.id for s in playbook.stages.values() if s.rank is not None]
        raise InvalidInput(f"cohort: {cohort!r} is neither 'created' nor a funnel stage ({', '.join(funnel)})",
                           "invalid_cohort")
    joined = lead_facts.join(stage_reached, stage_reached.c.lead_id == lead_facts.c.lead_id)
    return (select().select_from(joined).where(stage_reached.c.stage == cohort, stage_reached.c.at >= period.start,
                                                stage_reached.c.at < period.end), cohort)


def funnel_report(connection: Connection, playbook: Playbook, period: Period, *, cohort: str = "created",
                  breakdown: str | None = None) -> FunnelReport:
    breakdown = check_breakdown(breakdown)
    base, first = cohort_query(playbook, period, cohort)
    funnel = Funnel.of(playbook)
    shown = [stage for stage in funnel.ordered if funnel.ranks[stage] >= funnel.ranks[first]]
    group = BREAKDOWNS[breakdown] if breakdown else None
    keys = [group] if group is not None else []

    # (group, highest stage, stage now) -> leads, won value
    counts = connection.execute(base.add_columns(*keys, lead_facts.c.highest_stage, lead_facts.c.stage, func.count(),
                                                 func.sum(lead_facts.c.value))
                                .group_by(*keys, lead_facts.c.highest_stage, lead_facts.c.stage)).all()
    exits = (stage_spans.c.stage, stage_spans.c.next_stage, stage_spans.c.reason)
    if cohort == "created":  # the spans know their lead's creation: the cohort's exits are one index range
        left = select(*keys, *exits, func.count()).where(
            stage_spans.c.next_stage.in_(funnel.side or ("",)), stage_spans.c.lead_created_at >= period.start,
            stage_spans.c.lead_created_at < period.end)
        if group is not None:
            left = left.join_from(stage_spans, lead_facts, lead_facts.c.lead_id == stage_spans.c.lead_id)
    else:
        left = (base.add_columns(*keys, *exits, func.count())
                .join(stage_spans, stage_spans.c.lead_id == lead_facts.c.lead_id)
                .where(stage_spans.c.next_stage.in_(funnel.side or ("",))))
    leaks = connection.execute(left.group_by(*keys, *exits)).all()

    by_group: dict[Any, list[Any]] = defaultdict(list)
    for row in counts:
        by_group[row[0] if group is not None else None].append(row[-4:])
    leaks_by_group: dict[Any, list[Any]] = defaultdict(list)
    for row in leaks:
        leaks_by_group[row[0] if group is not None else None].append(row[-4:])
    minimum = funnel.ranks[first]

    def build(name: str | None, rows: list[Any], exits: list[Any]) -> FunnelGroup:
        reached = {stage: 0 for stage in shown}
        now_in: dict[str, int] = defaultdict(int)
        value = 0.0
        for highest, stage, count, won_value in rows:
            rank = funnel.ranks.get(highest, -1)
            for candidate in shown:
                if rank >= funnel.ranks[candidate]:
                    reached[candidate] += count
            now_in[stage] += count
            value += won_value or 0.0
        total = sum(count for _, _, count, _ in rows)
        stages, before = [], None
        for stage in shown:
            stages.append(StageCount(stage, playbook.stages[stage].name, reached[stage],
                                     None if before is None else rate(reached[stage], reached[before]),
                                     now_in.get(stage, 0)))
            before = stage
        kept = [Leak(stage, to, reason, count) for stage, to, reason, count in exits
                if funnel.ranks.get(stage, minimum) >= minimum]
        kept.sort(key=lambda leak: (funnel.ranks.get(leak.stage, 99), leak.stage, leak.to, -leak.count,
                                    leak.reason or ""))
        won = reached.get(funnel.won, 0) if funnel.won else 0
        return FunnelGroup(name, total, stages, rate(won, total), value, kept,
                           {stage: now_in[stage] for stage in funnel.side if now_in.get(stage)})

    everyone = build(None, [row for rows in by_group.values() for row in rows],
                     [row for rows in leaks_by_group.values() for row in rows])
    everyone = _merge_leaks(everyone)
    groups = []
    if group is not None:
        for key in sorted(set(by_group), key=lambda k: (k is None, str(k))):
            groups.append(build(group_label(key), by_group[key], leaks_by_group.get(key, [])))
        groups.sort(key=lambda g: (-g.leads, g.group or ""))
    return FunnelReport(period.as_dict(), cohort, breakdown, everyone, groups)


def _merge_leaks(group: FunnelGroup) -> FunnelGroup:
    """The total's leaks come from every group: the same stage, destination and reason add up."""
    merged: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for leak in group.leakage:
        merged[(leak.stage, leak.to, leak.reason)] += leak.count
    group.leakage = [Leak(stage, to, reason, count) for (stage, to, reason), count in merged.items()]
    return group

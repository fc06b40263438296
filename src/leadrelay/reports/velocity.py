"""The velocity report: how long leads and deals take, over the period and month by month.

- **Time in stage**: every stay in a stage that *ended* in the period (the lead moved on, back or
  out), by the month it ended; median, 75th and 90th percentile (nearest rank). A stage a lead
  skipped has no stay. `now_in` counts the stays still going on.
- **Sales cycle**: from a lead's creation to its win, for the leads won in the period, by the month
  of the win.
- **MQL → first touch**: from a hand-off (the deal opened) to the first call, email or meeting on
  that deal, for the deals opened in the period, by the month of the hand-off; `untouched` counts
  those deals nobody has called, emailed or met yet.
- **Stale deals**: open deals in their stage for longer than the playbook's `stage_time` commitment
  for that stage, or else `stale_days`; counted now, whatever the period.

With a breakdown (source, medium, campaign, segment, team, rep), time in stage and the sales cycle
are also given per group (over the whole period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from leadrelay.adapters.tables import deals, lead_facts, leads, stage_spans, touches
from leadrelay.domain.model import ATTEMPT_KINDS
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.common import (
    BREAKDOWNS,
    Rows,
    Spread,
    Timeline,
    group_label,
    seconds_between,
    spreads,
    timeline,
)
from leadrelay.reports.export import Table
from leadrelay.reports.funnel import check_breakdown
from leadrelay.reports.periods import Period

DEFAULT_STALE_DAYS = 30


@dataclass
class StageTime:
    stage: str
    name: str
    time: Timeline  # seconds
    now_in: int  # stays in this stage still going on (leads in it now)


@dataclass
class StaleDeal:
    deal_id: int
    lead_id: int
    email: str
    stage: str
    team: str
    owner: str | None
    stage_entered_at: datetime
    days_in_stage: float
    limit_days: float


@dataclass
class GroupTimes:
    group: str
    time_in_stage: dict[str, Spread]  # stage -> seconds
    sales_cycle: Spread


@dataclass
class VelocityReport:
    period: dict[str, str]
    months: list[str]
    breakdown: str | None
    time_in_stage: list[StageTime]
    sales_cycle: Timeline
    mql_to_first_touch: Timeline
    untouched: int  # deals opened in the period with no call, email or meeting yet
    stale_limits: dict[str, float]  # stage -> days
    stale_counts: dict[str, int]  # stage -> open deals stale now
    stale: list[StaleDeal]
    groups: list[GroupTimes] = field(default_factory=list)

    def tables(self) -> dict[str, Table]:
        """Durations in seconds: each measure over the period ("(all)") and by month; per group;
        the stale deals."""
        def rows(kind: str, name: str, line: Timeline) -> list[tuple[Any, ...]]:
            found = [(kind, name, "(all)", *_spread(line.overall))]
            found += [(kind, name, month, *_spread(spread)) for month, spread in sorted(line.by_month.items())]
            return found

        times = [row for item in self.time_in_stage for row in rows("time_in_stage", item.stage, item.time)]
        times += rows("sales_cycle", "", self.sales_cycle) + rows("mql_to_first_touch", "", self.mql_to_first_touch)
        groups = [(g.group, "time_in_stage", stage, *_spread(spread))
                  for g in self.groups for stage, spread in g.time_in_stage.items()]
        groups += [(g.group, "sales_cycle", "", *_spread(g.sales_cycle)) for g in self.groups]
        spread_columns = ("count", "median_seconds", "p75_seconds", "p90_seconds")
        return {
            "durations": Table.of(("measure", "stage", "month", *spread_columns), times),
            "groups": Table.of(("group", "measure", "stage", *spread_columns), groups),
            "stale": Table.of(("deal_id", "lead_id", "email", "stage", "team", "owner", "stage_entered_at",
                               "days_in_stage", "limit_days"), (tuple(vars(deal).values()) for deal in self.stale)),
        }


def _spread(spread: Spread) -> tuple[Any, ...]:
    return spread.count, spread.median, spread.p75, spread.p90


def stale_limits(playbook: Playbook, stale_days: float) -> dict[str, float]:
    """Days a deal may stay in each open sales stage before it is stale."""
    limits = {stage: stale_days for stage in playbook.sales_stages if playbook.stages[stage].outcome is None}
    for commitment in playbook.sla.commitments:
        if commitment.measure == "stage_time" and commitment.stage in limits and not commitment.teams \
                and commitment.when is None:
            limits[commitment.stage] = commitment.within.total_seconds() / 86400
    return limits


def velocity_report(connection: Connection, playbook: Playbook, period: Period, now: datetime, *,
                    breakdown: str | None = None, stale_days: float = DEFAULT_STALE_DAYS,
                    limit: int = 100) -> VelocityReport:
    breakdown = check_breakdown(breakdown)
    months = period.months()
    ended = Rows(stage_spans, (stage_spans.c.left_at >= period.start, stage_spans.c.left_at < period.end))
    by_stage = timeline(connection, stage_spans.c.seconds, stage_spans.c.left_at, months, ended, [stage_spans.c.stage])
    open_now = dict(connection.execute(select(stage_spans.c.stage, func.count()).where(stage_spans.c.left_at.is_(None))
                                       .group_by(stage_spans.c.stage)).all())
    order = {stage: index for index, stage in enumerate(playbook.stages)}
    stages = [StageTime(stage, playbook.stages[stage].name if stage in playbook.stages else stage,
                        by_stage.get((stage,), Timeline()), open_now.get(stage, 0))
              for stage in sorted({s for s, in by_stage}, key=lambda s: (order.get(s, 99), s))]

    won = Rows(lead_facts, (lead_facts.c.outcome == "won", lead_facts.c.closed_at >= period.start,
                            lead_facts.c.closed_at < period.end))
    cycle = timeline(connection, lead_facts.c.cycle_seconds, lead_facts.c.closed_at, months, won).get((), Timeline())

    # each deal opened in the period, with its first call, email or meeting (an index probe per deal)
    first_at = (select(func.min(touches.c.at)).where(touches.c.deal_id == deals.c.id,
                                                      touches.c.kind.in_(sorted(ATTEMPT_KINDS)))
                .scalar_subquery())
    handed = (select(deals.c.opened_at, first_at.label("first_at"))
              .where(deals.c.opened_at >= period.start, deals.c.opened_at < period.end)
              .cte("handed").prefix_with("MATERIALIZED"))  # each deal's first touch looked up once
    opened = Rows(handed)
    wait = seconds_between(connection, handed.c.opened_at, handed.c.first_at)
    to_touch = timeline(connection, wait, handed.c.opened_at, months, opened).get((), Timeline())
    untouched = connection.scalar(opened.select(func.count()).where(handed.c.first_at.is_(None))) or 0

    limits = stale_limits(playbook, stale_days)
    too_long = or_(*[and_(deals.c.stage == stage, deals.c.stage_entered_at < now - timedelta(days=days))
                     for stage, days in limits.items()]) if limits else deals.c.id.is_(None)
    stale_condition = and_(deals.c.closed_at.is_(None), too_long)
    stale_counts = {stage: count for stage, count in connection.execute(
        select(deals.c.stage, func.count()).where(stale_condition).group_by(deals.c.stage))}
    query = (select(deals.c.id, deals.c.lead_id, leads.c.email, deals.c.stage, deals.c.team, deals.c.owner,
                    deals.c.stage_entered_at).join(leads, leads.c.id == deals.c.lead_id).where(stale_condition)
             .order_by(deals.c.stage_entered_at).limit(limit))
    stale = [StaleDeal(row.id, row.lead_id, row.email, row.stage, row.team, row.owner, row.stage_entered_at,
                       round((now - row.stage_entered_at).total_seconds() / 86400, 2), limits[row.stage])
             for row in connection.execute(query)]
    stale.sort(key=lambda deal: deal.stage_entered_at)

    groups: list[GroupTimes] = []
    if breakdown:
        column = BREAKDOWNS[breakdown]
        joined = Rows(stage_spans.join(lead_facts, lead_facts.c.lead_id == stage_spans.c.lead_id), ended.where)
        per_stage = spreads(connection, stage_spans.c.seconds, [column, stage_spans.c.stage], joined)
        per_cycle = spreads(connection, lead_facts.c.cycle_seconds, [column], won)
        found: dict[str, GroupTimes] = {}
        for (key, stage), spread in per_stage.items():
            found.setdefault(group_label(key), GroupTimes(group_label(key), {}, Spread())).time_in_stage[stage] = spread
        for (key,), spread in per_cycle.items():
            found.setdefault(group_label(key), GroupTimes(group_label(key), {}, Spread())).sales_cycle = spread
        for entry in found.values():
            entry.time_in_stage = dict(sorted(entry.time_in_stage.items(), key=lambda kv: order.get(kv[0], 99)))
        groups = sorted(found.values(), key=lambda g: g.group)

    return VelocityReport(period.as_dict(), [m.label for m in months], breakdown, stages, cycle, to_touch, untouched,
                          limits, stale_counts, stale[:limit], groups)

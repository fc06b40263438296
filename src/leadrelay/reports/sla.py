"""The SLA report: whether each team keeps its promises.

Sales: each commitment's clocks met and breached per rep or team, how fast deals are answered
and first touched (median and 90th percentile), the clocks at risk now, the breaches. Marketing:
MQLs against the volume target per week or month, and how many of them sales accepted and
qualified, by source. Plus the hand-back reasons (marketing's feedback)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, select

from leadrelay.adapters.tables import clocks, deal_activity, deals, leads
from leadrelay.domain.playbook import Playbook


@dataclass
class Compliance:
    commitment: str
    group: str | None  # the rep or team
    met: int = 0
    breached: int = 0
    running: int = 0
    stopped: int = 0

    @property
    def rate(self) -> float | None:
        """Met among the clocks that came to an end either way (None: none did)."""
        done = self.met + self.breached
        return None if done == 0 else self.met / done


@dataclass
class Marketing:
    commitment: str
    kind: str
    target: float
    actual: float | None
    met: bool | None  # None: nothing to judge yet (no answered MQLs)
    periods: list[dict[str, Any]] = field(default_factory=list)  # mql_volume: each week or month
    by_source: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SlaReport:
    since: datetime
    until: datetime
    compliance: list[Compliance]
    response: dict[str, dict[str, float | int | None]]  # measure -> count, median and p90 seconds
    at_risk: list[dict[str, Any]]
    breaches: list[dict[str, Any]]
    marketing: list[Marketing]
    hand_backs: dict[str, int]


def sla_report(connection: Connection, playbook: Playbook, since: datetime, until: datetime, now: datetime, *,
               by: str = "owner", limit: int = 100) -> SlaReport:
    """Clocks started in [since, until); marketing's MQLs handed off in that period."""
    return SlaReport(
        since=since, until=until,
        compliance=_compliance(connection, since, until, by),
        response=_response_times(connection, since, until),
        at_risk=_at_risk(connection, now, limit),
        breaches=_breaches(connection, since, until, limit),
        marketing=_marketing(connection, playbook, since, until),
        hand_backs=hand_back_reasons(connection, since, until),
    )


def _compliance(connection: Connection, since: datetime, until: datetime, by: str) -> list[Compliance]:
    group = clocks.c.team if by == "team" else clocks.c.owner
    query = (select(clocks.c.commitment, group, clocks.c.status, func.count())
             .where(clocks.c.started_at >= since, clocks.c.started_at < until)
             .group_by(clocks.c.commitment, group, clocks.c.status))
    found: dict[tuple[str, str | None], Compliance] = {}
    for commitment, who, status, count in connection.execute(query):
        row = found.setdefault((commitment, who), Compliance(commitment, who))
        setattr(row, status, getattr(row, status) + count)
    return sorted(found.values(), key=lambda row: (row.commitment, row.group or ""))


def _response_times(connection: Connection, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """How long answering and first touching took, for the clocks met in the period."""
    query = select(clocks.c.measure, clocks.c.started_at, clocks.c.ended_at).where(
        clocks.c.status == "met", clocks.c.measure.in_(["accept", "first_touch"]),
        clocks.c.ended_at >= since, clocks.c.ended_at < until)
    seconds: dict[str, list[float]] = defaultdict(list)
    for measure, started, ended in connection.execute(query):
        seconds[measure].append((ended - started).total_seconds())
    return {measure: _spread(seconds.get(measure, [])) for measure in ("accept", "first_touch")}


def _spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_seconds": None, "p90_seconds": None}
    ordered = sorted(values)
    return {"count": len(values), "median_seconds": statistics.median(ordered),
            "p90_seconds": ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]}


def _clock_rows(connection: Connection, condition: Any, order: Any, limit: int) -> list[dict[str, Any]]:
    query = (select(clocks, deals.c.lead_id, leads.c.email).join(deals, deals.c.id == clocks.c.deal_id)
             .join(leads, leads.c.id == deals.c.lead_id).where(condition).order_by(order).limit(limit))
    return [dict(row._mapping) for row in connection.execute(query)]


def _at_risk(connection: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Running clocks past their warning time, the nearest due first."""
    return _clock_rows(connection, and_(clocks.c.status == "running", clocks.c.warn_at <= now), clocks.c.due_at, limit)


def _breaches(connection: Connection, since: datetime, until: datetime, limit: int) -> list[dict[str, Any]]:
    return _clock_rows(connection, and_(clocks.c.status == "breached", clocks.c.ended_at >= since,
                                        clocks.c.ended_at < until), clocks.c.ended_at.desc(), limit)


def _marketing(connection: Connection, playbook: Playbook, since: datetime, until: datetime) -> list[Marketing]:
    """MQLs are the deals handed off in the period; accepted when sales moved them on, rejected when
    handed back or disqualified before that; qualified when they reached a stage beyond SAL."""
    accept_rank = playbook.rank(playbook.accept_stage)
    query = (select(deals.c.id, deals.c.opened_at, deals.c.stage, deals.c.outcome, leads.c.source,
                    leads.c.highest_stage)
             .join(leads, leads.c.id == deals.c.lead_id)
             .where(deals.c.opened_at >= since, deals.c.opened_at < until))
    rows = connection.execute(query).all()
    moved_on = set(connection.scalars(select(deal_activity.c.deal_id).where(
        deal_activity.c.deal_id.in_([row.id for row in rows] or [0]), deal_activity.c.action == "moved")))
    found = []
    for commitment in playbook.sla.marketing:
        mine = [row for row in rows if commitment.source is None or row.source == commitment.source]
        if commitment.kind == "mql_volume":
            periods = _periods(mine, since, until, commitment.per, ZoneInfo(playbook.timezone))
            full = [p for p in periods if p["complete"]]
            actual = statistics.mean(p["mqls"] for p in full) if full else None
            found.append(Marketing(commitment.name, commitment.kind, commitment.target, actual,
                                   None if actual is None else all(p["mqls"] >= commitment.target for p in full),
                                   periods=periods))
            continue
        by_source: dict[str, list[Any]] = defaultdict(list)
        for row in mine:
            by_source[row.source or "(unknown)"].append(row)
        rates = {source: _rates(group, moved_on, accept_rank, playbook) for source, group in by_source.items()}
        overall = _rates(mine, moved_on, accept_rank, playbook)
        key = "acceptance_rate" if commitment.kind == "acceptance_rate" else "sql_rate"
        actual = overall[key]
        found.append(Marketing(commitment.name, commitment.kind, commitment.target, actual,
                               None if actual is None else actual >= commitment.target, by_source=rates))
    return found


def _rates(rows: list[Any], moved_on: set[int], accept_rank: int, playbook: Playbook) -> dict[str, Any]:
    accepted = [r for r in rows if r.id in moved_on]
    rejected = [r for r in rows if r.id not in moved_on and r.outcome in ("handed_back", "disqualified")]
    qualified = [r for r in rows if playbook.rank(r.highest_stage) > accept_rank]
    answered = len(accepted) + len(rejected)
    return {"mqls": len(rows), "accepted": len(accepted), "rejected": len(rejected), "qualified": len(qualified),
            "acceptance_rate": None if answered == 0 else len(accepted) / answered,
            "sql_rate": None if not rows else len(qualified) / len(rows)}


def _periods(rows: list[Any], since: datetime, until: datetime, per: str, zone: tzinfo) -> list[dict[str, Any]]:
    """MQLs in each week (from Monday) or month of the range, in the playbook's time zone;
    `complete` when the period lies wholly in the range."""
    periods = []
    start = since.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start = start - timedelta(days=start.weekday()) if per == "week" else start.replace(day=1)
    while start < until:
        if per == "week":
            end = (start.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=zone)  # local midnight, DST or not
        else:
            end = (start.replace(day=28, tzinfo=None) + timedelta(days=4)).replace(day=1, tzinfo=zone)
        count = sum(1 for row in rows if start <= row.opened_at < end)
        periods.append({"start": start, "end": end, "mqls": count, "complete": start >= since and end <= until})
        start = end
    return periods


def hand_back_reasons(connection: Connection, since: datetime | None, until: datetime | None) -> dict[str, int]:
    """How many deals sales handed back to marketing, by reason (marketing's feedback)."""
    query = select(deals.c.close_reason, func.count()).where(deals.c.outcome == "handed_back")
    if since is not None:
        query = query.where(deals.c.closed_at >= since)
    if until is not None:
        query = query.where(deals.c.closed_at < until)
    return {reason or "(none)": count for reason, count in connection.execute(query.group_by(deals.c.close_reason))}

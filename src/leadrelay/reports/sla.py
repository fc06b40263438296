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

from sqlalchemy import Connection, and_, case, func, select

from leadrelay.adapters.tables import clocks, deal_activity, deals, lead_facts, leads
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
    if connection.dialect.name == "sqlite":  # the seconds computed by the store (to the millisecond)
        took = func.round((func.julianday(clocks.c.ended_at) - func.julianday(clocks.c.started_at)) * 86400.0, 3)
    else:
        took = func.extract("epoch", clocks.c.ended_at - clocks.c.started_at)
    query = select(clocks.c.measure, took).where(
        clocks.c.status == "met", clocks.c.measure.in_(["accept", "first_touch"]),
        clocks.c.ended_at >= since, clocks.c.ended_at < until)
    seconds: dict[str, list[float]] = defaultdict(list)
    for measure, duration in connection.execute(query):
        seconds[measure].append(float(duration))
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
    handed back or disqualified before that; qualified when they reached a stage beyond SAL.
    Counted by the database, per source (and per week or month for the volume)."""
    accept_rank = playbook.rank(playbook.accept_stage)
    zone = ZoneInfo(playbook.timezone)
    pers = {commitment.per for commitment in playbook.sla.marketing if commitment.kind == "mql_volume"}
    bounds = {per: _period_bounds(since, until, per, zone) for per in pers}
    # the lead's source and highest stage from its narrow row of facts (see adapters.analytics),
    # and from the lead itself only for a lead the analytics tables do not hold yet
    source = func.coalesce(lead_facts.c.source, select(leads.c.source).where(leads.c.id == deals.c.lead_id)
                           .scalar_subquery())
    highest = func.coalesce(lead_facts.c.highest_stage, select(leads.c.highest_stage)
                            .where(leads.c.id == deals.c.lead_id).scalar_subquery())
    moved = (select(deal_activity.c.id).where(deal_activity.c.deal_id == deals.c.id, deal_activity.c.action == "moved")
             .exists())
    buckets = {per: case(*[(deals.c.opened_at < end, index) for index, (_, end, _) in enumerate(found)], else_=None)
               .label(f"bucket_{per}") for per, found in bounds.items()}
    each = (select(source.label("source"), highest.label("highest_stage"), deals.c.outcome,
                   case((moved, 1), else_=0).label("moved"), *buckets.values())
            .outerjoin(lead_facts, lead_facts.c.lead_id == deals.c.lead_id)
            .where(deals.c.opened_at >= since, deals.c.opened_at < until).subquery())
    qualified = [stage for stage in playbook.stages if playbook.rank(stage) > accept_rank] or [""]
    rejected = and_(each.c.moved == 0, each.c.outcome.in_(("handed_back", "disqualified")))
    tallies: dict[str | None, dict[str, int]] = {}
    volumes: dict[str, dict[tuple[str | None, int], int]] = {per: defaultdict(int) for per in bounds}
    columns = [each.c[f"bucket_{per}"] for per in bounds]
    query = select(each.c.source, *columns, func.count(), func.sum(each.c.moved),
                   func.sum(case((rejected, 1), else_=0)),
                   func.sum(case((each.c.highest_stage.in_(qualified), 1), else_=0))).group_by(each.c.source, *columns)
    for key, *row in connection.execute(query):
        indexes, (mqls, accepted, rejected_count, qualified_count) = row[:len(columns)], row[len(columns):]
        tally = tallies.setdefault(key, dict.fromkeys(("mqls", "accepted", "rejected", "qualified"), 0))
        for name, count in (("mqls", mqls), ("accepted", accepted), ("rejected", rejected_count),
                            ("qualified", qualified_count)):
            tally[name] += int(count or 0)
        for per, index in zip(bounds, indexes, strict=True):
            volumes[per][(key, index)] += mqls

    found = []
    for commitment in playbook.sla.marketing:
        mine = {key: tally for key, tally in tallies.items() if commitment.source is None or key == commitment.source}
        if commitment.kind == "mql_volume":
            periods = [{"start": start, "end": end, "complete": complete,
                        "mqls": sum(count for (key, index), count in volumes[commitment.per].items()
                                    if index == number and key in mine)}
                       for number, (start, end, complete) in enumerate(bounds[commitment.per])]
            full = [p for p in periods if p["complete"]]
            actual = statistics.mean(p["mqls"] for p in full) if full else None
            found.append(Marketing(commitment.name, commitment.kind, commitment.target, actual,
                                   None if actual is None else all(p["mqls"] >= commitment.target for p in full),
                                   periods=periods))
            continue
        by_source: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(("mqls", "accepted", "rejected",
                                                                                   "qualified"), 0))
        for key, tally in mine.items():
            for name, count in tally.items():
                by_source[key or "(unknown)"][name] += count
        rates = {key: _rates(tally) for key, tally in by_source.items()}
        overall = _rates({name: sum(t[name] for t in mine.values()) for name in ("mqls", "accepted", "rejected",
                                                                                 "qualified")})
        key = "acceptance_rate" if commitment.kind == "acceptance_rate" else "sql_rate"
        actual = overall[key]
        found.append(Marketing(commitment.name, commitment.kind, commitment.target, actual,
                               None if actual is None else actual >= commitment.target, by_source=rates))
    return found


def _rates(tally: dict[str, int]) -> dict[str, Any]:
    answered = tally["accepted"] + tally["rejected"]
    return {**tally, "acceptance_rate": None if answered == 0 else tally["accepted"] / answered,
            "sql_rate": None if not tally["mqls"] else tally["qualified"] / tally["mqls"]}


def _period_bounds(since: datetime, until: datetime, per: str, zone: tzinfo) -> list[tuple[datetime, datetime, bool]]:
    """Each week (from Monday) or month of the range, in the playbook's time zone: its start, its
    end, and whether it lies wholly in the range."""
    periods = []
    start = since.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start = start - timedelta(days=start.weekday()) if per == "week" else start.replace(day=1)
    while start < until:
        if per == "week":
            end = (start.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=zone)  # local midnight, DST or not
        else:
            end = (start.replace(day=28, tzinfo=None) + timedelta(days=4)).replace(day=1, tzinfo=zone)
        periods.append((start, end, start >= since and end <= until))
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

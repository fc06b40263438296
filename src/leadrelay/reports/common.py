"""What the analytics reports share: breakdowns, percentiles computed in the database, months of a
period as a SQL expression, and the time between two columns in seconds on either store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    case,
    func,
    or_,
    select,
)

from leadrelay.adapters.tables import lead_facts
from leadrelay.reports.periods import Bucket
from leadrelay.reports.stats import PERCENTILES, rank

NONE = "(none)"  # the group of leads with no value for a breakdown

# breakdown name -> the lead_facts column it groups by
BREAKDOWNS: dict[str, Any] = {
    "source": lead_facts.c.source,
    "medium": lead_facts.c.medium,
    "campaign": lead_facts.c.campaign,
    "segment": lead_facts.c.segment,
    "team": lead_facts.c.team,
    "rep": lead_facts.c.rep,
}


def group_label(value: Any) -> str:
    return NONE if value is None or value == "" else str(value)


@dataclass
class Spread:
    """How long something took, in seconds: how many, the median, the 75th and 90th percentiles."""

    count: int = 0
    median: float | None = None
    p75: float | None = None
    p90: float | None = None


@dataclass
class Timeline:
    """A duration over the whole period and month by month (months with none are left out)."""

    overall: Spread = field(default_factory=Spread)
    by_month: dict[str, Spread] = field(default_factory=dict)


def month_of(column: ColumnElement[Any], months: Sequence[Bucket]) -> ColumnElement[Any]:
    """The index of the month a moment falls in (None outside them): the bounds are UTC instants
    of local midnights, so months follow the playbook's time zone."""
    return case(*[(column < month.end, index) for index, month in enumerate(months)], else_=None)


def seconds_between(connection: Connection, start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[Any]:
    if connection.dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


@dataclass(frozen=True)
class Rows:
    """The rows a figure is computed over: a FROM (a table or a join) and conditions."""

    source: FromClause
    where: tuple[ColumnElement[bool], ...] = ()

    def select(self, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(self.source).where(*self.where)


def spreads(connection: Connection, value: ColumnElement[Any], groups: Sequence[ColumnElement[Any]],
            rows: Rows) -> dict[tuple[Any, ...], Spread]:
    """Count, median, p75 and p90 (nearest rank) of `value` for each combination of `groups`, over
    `rows` (those where `value` is not null). Computed by the database: PostgreSQL's
    percentile_disc, and on SQLite a window that numbers the rows."""
    if connection.dialect.name == "postgresql":
        statement = rows.select(*groups, func.count(value),
                                *[func.percentile_disc(p / 100).within_group(value) for p in PERCENTILES])
        statement = statement.where(value.is_not(None))
        if groups:
            statement = statement.group_by(*groups)
        found = {}
        for row in connection.execute(statement):
            keys, count, *values = row[:len(groups)], row[len(groups)], *row[len(groups) + 1:]
            if count:
                found[tuple(keys)] = Spread(count, *(_seconds(value) for value in values))
        return found
    labelled = [column.label(f"g{index}") for index, column in enumerate(groups)]
    numbered = rows.select(*labelled, value.label("v"),
                           func.row_number().over(partition_by=groups or None, order_by=value).label("rn"),
                           func.count().over(partition_by=groups or None).label("n"))
    inner = numbered.where(value.is_not(None)).subquery()
    wanted = or_(*[inner.c.rn == (inner.c.n * p + 99) // 100 for p in PERCENTILES])
    rows = connection.execute(select(*[inner.c[f"g{i}"] for i in range(len(groups))], inner.c.n, inner.c.rn,
                                     inner.c.v).where(wanted))
    found: dict[tuple[Any, ...], Spread] = {}
    for row in rows:
        keys, count, position, amount = tuple(row[:len(groups)]), row[-3], row[-2], row[-1]
        spread = found.setdefault(keys, Spread(count))
        for p, name in zip(PERCENTILES, ("median", "p75", "p90"), strict=True):
            if position == rank(p, count):
                setattr(spread, name, _seconds(amount))
    return found


def _seconds(value: Any) -> float | None:
    """To the millisecond (SQLite's day fractions are not exact beyond that)."""
    return None if value is None else round(float(value), 3)


def timeline(connection: Connection, value: ColumnElement[Any], moment: ColumnElement[Any],
             months: Sequence[Bucket], rows: Rows,
             groups: Sequence[ColumnElement[Any]] = ()) -> dict[tuple[Any, ...], Timeline]:
    """`spreads` over the whole period and by month (of `moment`), for each group."""
    found: dict[tuple[Any, ...], Timeline] = {}
    for keys, spread in spreads(connection, value, groups, rows).items():
        found.setdefault(keys, Timeline()).overall = spread
    month = month_of(moment, months)
    for keys, spread in spreads(connection, value, [*groups, month], rows).items():
        *group_keys, index = keys
        if index is not None:
            found.setdefault(tuple(group_keys), Timeline()).by_month[months[index].label] = spread
    return found


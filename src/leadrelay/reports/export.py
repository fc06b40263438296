"""Reports as flat tables, and tables as CSV (for spreadsheets)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from leadrelay.reports.sla import SlaReport


@dataclass
class Table:
    """A flat table: its columns (a CSV's header, even with no rows) and its rows."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
        names = list(columns)
        return cls(names, [dict(zip(names, row, strict=True)) for row in rows])

    def csv(self) -> str:
        return to_csv(self.rows, self.columns)


def tables_of(report: Any) -> dict[str, Table]:
    """Every table of a report, by name (the first is its main one)."""
    if isinstance(report, SlaReport):
        breach = ("deal_id", "email", "commitment", "team", "owner", "started_at", "due_at", "ended_at")
        return {
            "compliance": Table.of(("commitment", "group", "met", "breached", "running", "stopped", "rate"), (
                (r.commitment, r.group, r.met, r.breached, r.running, r.stopped, r.rate) for r in report.compliance)),
            "marketing": Table.of(("commitment", "kind", "target", "actual", "met"), (
                (r.commitment, r.kind, r.target, r.actual, r.met) for r in report.marketing)),
            "breaches": Table.of(breach, ([row.get(key) for key in breach] for row in report.breaches)),
            "hand_backs": Table.of(("reason", "count"), report.hand_backs.items()),
        }
    return report.tables()  # type: ignore[no-any-return]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else f"{value:.0f}"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return value


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """The rows as CSV text with a header row (the columns of the first row, then any others)."""
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        columns = list(seen)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()

"""The content report: which content sales uses, and which content goes with winning.

- **Used by sales**: of the content items (not archived), how many reps shared with a lead in the
  period: the percentage of content used by sales, by kind, by rep or by team; and the items
  nobody shared in the period (`never_shared` tells those never shared at all).
- **Won vs lost**: the leads won, and those whose deal was lost, in the period; for each item, how
  many of each had consumed it before they closed (downloaded the asset, visited the page, opened
  or clicked the email, attended the webinar), and the win rate among them with its 95 % interval
  (Wilson). An item consumed by few closed leads says little: `few` marks fewer than 20, and the
  interval shows how wide the doubt is. Association, not cause: good leads read more.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, select

from leadrelay.adapters.tables import (
    content_items,
    content_shares,
    lead_content,
    lead_facts,
)
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.export import Table
from leadrelay.reports.funnel import check_breakdown
from leadrelay.reports.periods import Period
from leadrelay.reports.stats import rate, wilson

USAGE_BREAKDOWNS = ("kind", "rep", "team")
FEW = 20  # closed leads below which a win rate is a hint, not a finding


@dataclass
class ItemRow:
    id: int
    kind: str
    key: str
    title: str
    shares: int = 0  # shared with a lead in the period
    leads_shared_with: int = 0
    shares_ever: int = 0
    won: int = 0  # leads won in the period that had consumed it
    lost: int = 0  # leads lost in the period that had consumed it
    win_rate: float | None = None  # won / (won + lost)
    low: float | None = None  # the win rate's 95 % interval
    high: float | None = None
    few: bool = True  # fewer than 20 closed leads consumed it
    never_shared: bool = True  # no rep has ever shared it


@dataclass
class Usage:
    group: str  # a kind, a rep or a team
    items: int  # items there are (for a rep or a team: all items)
    shared: int  # of them, shared in the period
    share: float | None


@dataclass
class ContentReport:
    period: dict[str, str]
    breakdown: str | None
    items: int  # content items, not archived
    items_shared: int  # of them, shared with a lead in the period
    used_by_sales: float | None  # items_shared / items
    usage: list[Usage]
    won_leads: int
    lost_leads: int
    win_rate: float | None  # of every lead closed in the period
    content: list[ItemRow]
    not_shared: list[ItemRow] = field(default_factory=list)  # items nobody shared in the period

    def tables(self) -> dict[str, Table]:
        return {
            "items": Table.of(tuple(ItemRow.__dataclass_fields__), (tuple(vars(item).values()) for item in self.content)),
            "usage": Table.of(("group", "items", "shared", "share"), (tuple(vars(row).values()) for row in self.usage)),
        }


def content_report(connection: Connection, playbook: Playbook, period: Period, *,
                   breakdown: str | None = "kind") -> ContentReport:
    breakdown = check_breakdown(breakdown, USAGE_BREAKDOWNS)
    in_period = and_(content_shares.c.at >= period.start, content_shares.c.at < period.end)
    live = content_items.c.archived_at.is_(None)
    rows = {row.id: ItemRow(row.id, row.kind, row.key, row.title)
            for row in connection.execute(select(content_items.c.id, content_items.c.kind, content_items.c.key,
                                                 content_items.c.title).where(live))}
    for item_id, count, leads, ever in connection.execute(
            select(content_shares.c.item_id, func.count().filter(in_period),
                   func.count(distinct(content_shares.c.lead_id)).filter(in_period), func.count())
            .group_by(content_shares.c.item_id)):
        if item_id in rows:
            rows[item_id].shares, rows[item_id].leads_shared_with, rows[item_id].shares_ever = count, leads, ever
            rows[item_id].never_shared = ever == 0

    closed = and_(lead_facts.c.closed_at >= period.start, lead_facts.c.closed_at < period.end,
                  lead_facts.c.outcome.in_(("won", "lost")))
    outcomes = dict(connection.execute(select(lead_facts.c.outcome, func.count()).where(closed)
                                       .group_by(lead_facts.c.outcome)).all())
    consumed = (select(content_items.c.id, lead_facts.c.outcome, func.count())
                .select_from(lead_content.join(lead_facts, lead_facts.c.lead_id == lead_content.c.lead_id)
                             .join(content_items, and_(content_items.c.kind == lead_content.c.kind,
                                                       content_items.c.key == lead_content.c.key)))
                .where(closed, live).group_by(content_items.c.id, lead_facts.c.outcome))
    for item_id, outcome, count in connection.execute(consumed):
        setattr(rows[item_id], outcome, count)
    for row in rows.values():
        closed_count = row.won + row.lost
        row.win_rate = rate(row.won, closed_count)
        interval = wilson(row.won, closed_count)
        row.low, row.high = interval if interval else (None, None)
        row.few = closed_count < FEW

    items = sorted(rows.values(), key=lambda r: (-(r.won + r.lost), -r.shares, r.kind, r.title))
    shared = [row for row in items if row.shares]
    usage = _usage(connection, playbook, breakdown, list(rows.values()), in_period)
    won, lost = outcomes.get("won", 0), outcomes.get("lost", 0)
    return ContentReport(period.as_dict(), breakdown, len(rows), len(shared), rate(len(shared), len(rows)), usage,
                         won, lost, rate(won, won + lost), items,
                         sorted((row for row in items if not row.shares), key=lambda r: (r.kind, r.title)))


def _usage(connection: Connection, playbook: Playbook, breakdown: str | None, items: list[ItemRow],
           in_period: Any) -> list[Usage]:
    if breakdown is None:
        return []
    if breakdown == "kind":
        totals: dict[str, int] = defaultdict(int)
        used: dict[str, int] = defaultdict(int)
        for item in items:
            totals[item.kind] += 1
            used[item.kind] += 1 if item.shares else 0
        return [Usage(kind, totals[kind], used[kind], rate(used[kind], totals[kind])) for kind in sorted(totals)]
    live = {item.id for item in items}
    by_rep: dict[str, set[int]] = defaultdict(set)
    for rep, item_id in connection.execute(select(content_shares.c.by, content_shares.c.item_id).where(in_period)
                                           .distinct()):
        if item_id in live:
            by_rep[rep].add(item_id)
    if breakdown == "rep":
        groups = dict(by_rep)
        for team in playbook.routing.teams.values():
            for rep in team.reps:
                groups.setdefault(rep.email, set())
    else:
        groups = {team.id: set() for team in playbook.routing.teams.values()}
        for rep, shared in by_rep.items():
            team = playbook.routing.team_of(rep)
            groups.setdefault(team.id if team else "(no team)", set()).update(shared)
    return sorted((Usage(group, len(live), len(shared), rate(len(shared), len(live)))
                   for group, shared in groups.items()), key=lambda u: (-u.shared, u.group))

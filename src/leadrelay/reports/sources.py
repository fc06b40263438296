"""The sources report: where leads come from and which convert.

- **Attribution**: the leads created, MQLs, SQLs and deals won in the period (each counted at the
  moment it happened), and the value won, credited to the source, medium or campaign of the
  lead's touchpoints under four models: first touch, last touch, linear, W-shaped (see
  `leadrelay.reports.attribution`). Each outcome's credits add up to one per lead.
- **Conversion**: the leads created in the period, grouped by where each came from (its `source`
  field, else its first touch's source; medium and campaign of its first touch), and how many of
  them reached MQL and were won by now.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from leadrelay.adapters.analytics import Funnel
from leadrelay.adapters.tables import attribution, lead_facts
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.attribution import MODELS
from leadrelay.reports.common import group_label
from leadrelay.reports.export import Table
from leadrelay.reports.funnel import check_breakdown
from leadrelay.reports.periods import Period
from leadrelay.reports.stats import rate

DIMENSIONS = ("source", "medium", "campaign")
OUTCOMES = ("lead", "mql", "sql", "won")
SHARES = {"first_touch": attribution.c.first_share, "last_touch": attribution.c.last_share,
          "linear": attribution.c.linear_share, "w_shaped": attribution.c.w_shaped_share}


@dataclass
class ChannelRow:
    channel: str
    credit: dict[str, dict[str, float]] = field(default_factory=dict)  # outcome -> model -> credit
    won_value: dict[str, float] = field(default_factory=dict)  # model -> value credited
    leads: int = 0  # leads created in the period that came from here
    mqls: int = 0  # of them, those that reached MQL
    won: int = 0  # of them, those won
    mql_rate: float | None = None
    win_rate: float | None = None


@dataclass
class SourcesReport:
    period: dict[str, str]
    breakdown: str
    models: list[str]
    totals: dict[str, int]  # outcome -> how many happened in the period
    won_value: float
    channels: list[ChannelRow]

    def tables(self) -> dict[str, Table]:
        """attribution: a row per channel and model (credits of each outcome, value won);
        conversion: a row per channel."""
        credits = [(row.channel, model, *(round(row.credit[outcome][model], 6) for outcome in OUTCOMES),
                    round(row.won_value[model], 2)) for row in self.channels for model in self.models]
        return {
            "attribution": Table.of((self.breakdown, "model", "leads", "mqls", "sqls", "won", "won_value"), credits),
            "conversion": Table.of((self.breakdown, "leads", "mqls", "won", "mql_rate", "win_rate"), (
                (row.channel, row.leads, row.mqls, row.won, row.mql_rate, row.win_rate) for row in self.channels)),
        }


def sources_report(connection: Connection, playbook: Playbook, period: Period, *,
                   breakdown: str | None = "source") -> SourcesReport:
    dimension = check_breakdown(breakdown or "source", DIMENSIONS) or "source"
    funnel = Funnel.of(playbook)
    found: dict[str, ChannelRow] = {}

    def row(key: Any) -> ChannelRow:
        label = group_label(key)
        return found.setdefault(label, ChannelRow(label))

    column = attribution.c[dimension]
    value_sums = [func.sum(attribution.c.value * share) for share in SHARES.values()]
    query = (select(attribution.c.outcome, column, *[func.sum(share) for share in SHARES.values()], *value_sums)
             .where(attribution.c.at >= period.start, attribution.c.at < period.end)
             .group_by(attribution.c.outcome, column))
    totals: dict[str, float] = defaultdict(float)
    won_value = 0.0
    for outcome, key, *sums in connection.execute(query):
        credits, values = sums[:len(MODELS)], sums[len(MODELS):]
        entry = row(key)
        entry.credit[outcome] = {model: float(credits[i] or 0.0) for i, model in enumerate(MODELS)}
        totals[outcome] += float(credits[0] or 0.0)
        if outcome == "won":
            entry.won_value = {model: float(values[i] or 0.0) for i, model in enumerate(MODELS)}
            won_value += float(values[0] or 0.0)

    cohort = (select(lead_facts.c[dimension], lead_facts.c.highest_stage, func.count())
              .where(lead_facts.c.created_at >= period.start, lead_facts.c.created_at < period.end)
              .group_by(lead_facts.c[dimension], lead_facts.c.highest_stage))
    mql_rank = funnel.ranks.get(funnel.mql, 0)
    won_rank = funnel.ranks.get(funnel.won) if funnel.won else None
    for key, highest, count in connection.execute(cohort):
        entry = row(key)
        rank = funnel.ranks.get(highest, -1)
        entry.leads += count
        entry.mqls += count if rank >= mql_rank else 0
        entry.won += count if won_rank is not None and rank >= won_rank else 0

    for entry in found.values():
        entry.mql_rate, entry.win_rate = rate(entry.mqls, entry.leads), rate(entry.won, entry.leads)
        for outcome in OUTCOMES:
            entry.credit.setdefault(outcome, dict.fromkeys(MODELS, 0.0))
        entry.credit = {outcome: entry.credit[outcome] for outcome in OUTCOMES}
        if not entry.won_value:
            entry.won_value = dict.fromkeys(MODELS, 0.0)
    channels = sorted(found.values(), key=lambda r: (-r.credit["lead"]["first_touch"], -r.leads, r.channel))
    return SourcesReport(period.as_dict(), dimension, list(MODELS),
                         {outcome: round(totals.get(outcome, 0.0)) for outcome in OUTCOMES}, won_value, channels)

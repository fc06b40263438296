"""The joint meeting report: one self-contained HTML file for the sales and marketing meeting.

The headline numbers of the period beside those of the period of the same length just before,
the changes that matter told as plain sentences, the charts (inline SVG), SLA compliance and
breaches by team, hand-back reasons, the best and worst sources. The file makes no request of any
kind when opened: no script, no style sheet, font or image from elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import Environment
from markupsafe import Markup
from sqlalchemy import Connection, func, select

from leadrelay.adapters.analytics import Funnel
from leadrelay.adapters.tables import stage_reached
from leadrelay.domain.playbook import Playbook
from leadrelay.reports import charts
from leadrelay.reports.common import month_of
from leadrelay.reports.compare import Figure, format_value, most, sentences
from leadrelay.reports.content import ContentReport, content_report
from leadrelay.reports.export import Table
from leadrelay.reports.funnel import FunnelReport, funnel_report
from leadrelay.reports.periods import Bucket, Period, local_midnight
from leadrelay.reports.sla import SlaReport, sla_report
from leadrelay.reports.sources import ChannelRow, SourcesReport, sources_report
from leadrelay.reports.stats import rate
from leadrelay.reports.velocity import VelocityReport, velocity_report

MIN_SOURCE_LEADS = 5  # a source with fewer leads is neither best nor worst: too few to tell
SOURCES_SHOWN = 10


@dataclass
class SourceVerdict:
    channel: str
    leads: int
    won: int
    win_rate: float | None
    mql_rate: float | None


@dataclass
class Meeting:
    playbook: str
    period: Period
    previous: Period
    generated_at: datetime
    figures: list[Figure]
    sentences: list[str]
    funnel: FunnelReport
    funnel_before: FunnelReport
    accepted: FunnelReport  # the period's MQLs: how many sales accepted, and why the rest went back
    velocity: VelocityReport
    sources: SourcesReport
    content: ContentReport
    sla: SlaReport
    weekly: list[tuple[str, int]]  # MQLs per week (or month)
    weekly_target: float | None
    best: list[SourceVerdict] = field(default_factory=list)
    worst: list[SourceVerdict] = field(default_factory=list)
    charts: list[charts.Chart] = field(default_factory=list)

    def tables(self) -> dict[str, Table]:
        return {"headline": Table.of(("figure", "kind", "current", "previous"),
                                     ((f.label, f.kind, f.current, f.previous) for f in self.figures))}


def _conversion(report: FunnelReport, stage: str) -> float | None:
    return next((s.conversion for s in report.total.stages if s.stage == stage), None)


def _reached(report: FunnelReport, stage: str | None) -> int:
    return next((s.reached for s in report.total.stages if s.stage == stage), 0)


def _sla_rate(report: SlaReport) -> float | None:
    met = sum(row.met for row in report.compliance)
    return rate(met, met + sum(row.breached for row in report.compliance))


def _rejections(report: FunnelReport, stage: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for leak in report.total.leakage:
        if leak.stage == stage:
            key = leak.reason or leak.to
            found[key] = found.get(key, 0) + leak.count
    return found


def _weeks(period: Period, per: str) -> list[Bucket]:
    """The weeks (from Monday) or months of the period, each cut to it."""
    if per == "month":
        return period.months()
    found, day = [], period.first
    while day <= period.last:
        end = min(day + timedelta(days=6 - day.weekday()), period.last)
        found.append(Bucket(f"{day:%m-%d}", local_midnight(day, period.zone), local_midnight(end + timedelta(days=1),
                                                                                           period.zone)))
        day = end + timedelta(days=1)
    return found


def _mqls_per(connection: Connection, playbook: Playbook, period: Period, per: str) -> list[tuple[str, int]]:
    buckets = _weeks(period, per)
    bucket = month_of(stage_reached.c.at, buckets)
    counts = dict(connection.execute(
        select(bucket, func.count()).where(stage_reached.c.stage == playbook.mql_stage,
                                           stage_reached.c.at >= period.start, stage_reached.c.at < period.end)
        .group_by(bucket)).all())
    return [(b.label, counts.get(index, 0)) for index, b in enumerate(buckets)]


def _verdicts(rows: Sequence[ChannelRow]) -> tuple[list[SourceVerdict], list[SourceVerdict]]:
    judged = [SourceVerdict(r.channel, r.leads, r.won, r.win_rate, r.mql_rate) for r in rows
              if r.leads >= MIN_SOURCE_LEADS]
    if len(judged) < 2:
        return [], []
    ranked = sorted(judged, key=lambda v: (v.win_rate or 0.0, v.mql_rate or 0.0, v.leads), reverse=True)
    count = min(3, len(ranked) // 2)
    return ranked[:count], list(reversed(ranked[-count:]))


def build_meeting(connection: Connection, playbook: Playbook, period: Period, now: datetime) -> Meeting:
    """Every figure of the meeting, for `period` and the period of the same length before it
    (the analytics tables must be up to date: see `leadrelay.services.analytics`)."""
    before = period.previous()
    funnel_now = funnel_report(connection, playbook, period)
    funnel_then = funnel_report(connection, playbook, before)
    accepted_now = funnel_report(connection, playbook, period, cohort=playbook.mql_stage)
    accepted_then = funnel_report(connection, playbook, before, cohort=playbook.mql_stage)
    velocity_now = velocity_report(connection, playbook, period, now)
    velocity_then = velocity_report(connection, playbook, before, now)
    sources_now = sources_report(connection, playbook, period, breakdown="source")
    sources_then = sources_report(connection, playbook, before, breakdown="source")
    content = content_report(connection, playbook, period, breakdown="kind")
    sla_now = sla_report(connection, playbook, period.start, period.end, now, by="team", limit=20)
    sla_then = sla_report(connection, playbook, before.start, before.end, now, by="team", limit=1)
    funnel = Funnel.of(playbook)
    accept = playbook.accept_stage
    stage_name = {stage.id: stage.name for stage in playbook.stages.values()}
    acceptance = f"{_short(playbook.mql_stage)} → {_short(accept)} acceptance"

    figures = [
        Figure("leads created", "count", funnel_now.total.leads, funnel_then.total.leads),
        Figure(f"{_short(playbook.mql_stage)}s", "count", sources_now.totals["mql"], sources_then.totals["mql"]),
        Figure(acceptance, "rate", _conversion(accepted_now, accept), _conversion(accepted_then, accept)),
    ]
    if funnel.sql:
        figures.append(Figure(f"{_short(funnel.sql)}s", "count", sources_now.totals["sql"], sources_then.totals["sql"]))
    figures += [
        Figure("deals won", "count", sources_now.totals["won"], sources_then.totals["won"]),
        Figure("value won", "amount", sources_now.won_value, sources_then.won_value),
        Figure("lead → customer conversion", "rate", funnel_now.total.end_to_end, funnel_then.total.end_to_end),
        Figure("median sales cycle", "duration", velocity_now.sales_cycle.overall.median,
               velocity_then.sales_cycle.overall.median, better="down"),
        Figure(f"median time from {_short(playbook.mql_stage)} to first touch", "duration",
               velocity_now.mql_to_first_touch.overall.median, velocity_then.mql_to_first_touch.overall.median,
               better="down"),
        Figure("SLA clocks met", "rate", _sla_rate(sla_now), _sla_rate(sla_then)),
    ]
    told = sentences(figures, {acceptance: most(_rejections(accepted_now, playbook.mql_stage), "rejections")})
    volume = next((c for c in playbook.sla.marketing if c.kind == "mql_volume" and c.source is None), None)
    per = volume.per if volume is not None else "week"
    best, worst = _verdicts(sources_now.channels)
    meeting = Meeting(playbook.name, period, before, now, figures, told, funnel_now, funnel_then, accepted_now,
                      velocity_now, sources_now, content, sla_now, _mqls_per(connection, playbook, period, per),
                      volume.target if volume is not None else None, best, worst)
    meeting.charts = _charts(meeting, stage_name, per)
    return meeting


def _short(stage: str) -> str:
    return stage.upper() if len(stage) <= 4 else stage


def _charts(meeting: Meeting, names: dict[str, str], per: str) -> list[charts.Chart]:
    stages = meeting.funnel.total.stages
    found = [charts.funnel([names.get(s.stage, s.stage) for s in stages], [s.reached for s in stages],
                           conversions=[s.conversion for s in stages], name="funnel",
                           title=f"Leads created {meeting.period.label()}: the stage each reached")]
    before = {s.stage: s.conversion for s in meeting.funnel_before.total.stages}
    steps = [s for s in stages if s.conversion is not None]
    found.append(charts.grouped_bar(
        [f"→ {_short(s.stage)}" for s in steps],
        {"this period": [s.conversion for s in steps], "period before": [before.get(s.stage) for s in steps]},
        title="Conversion from the stage before", name="conversion", value_format=charts.percent_format))
    found.append(charts.line([label for label, _ in meeting.weekly],
                             {"hand-offs": [count for _, count in meeting.weekly]},
                             target=meeting.weekly_target, target_label="agreed volume", name="mql-volume",
                             title=f"Hand-offs per {per} against the agreed volume"))
    times = [t for t in meeting.velocity.time_in_stage if t.time.overall.median is not None]
    found.append(charts.bar([t.name for t in times], [t.time.overall.median for t in times], horizontal=True,
                            value_format=charts.days_format, name="time-in-stage",
                            title="Median time in each stage (stays that ended in the period)"))
    top = sorted(meeting.sources.channels, key=lambda r: -r.leads)[:SOURCES_SHOWN]
    top = [r for r in top if r.leads]
    found.append(charts.stacked_bar(
        [r.channel for r in top],
        {"won": [r.won for r in top], "qualified, not won": [r.mqls - r.won for r in top],
         "not qualified": [r.leads - r.mqls for r in top]},
        colors=[charts.PALETTE[2], charts.PALETTE[0], "#c8c8c8"], name="sources",
        title="Leads created by source, and how far they got"))
    teams = [row for row in meeting.sla.compliance if row.rate is not None]
    by_team: dict[str, list[int]] = {}
    for row in teams:
        entry = by_team.setdefault(row.group or "(none)", [0, 0])
        entry[0] += row.met
        entry[1] += row.breached
    found.append(charts.bar(list(by_team), [rate(m, m + b) for m, b in by_team.values()], horizontal=True,
                            value_format=charts.percent_format, name="sla", title="SLA clocks met, by team"))
    reasons = sorted(meeting.sla.hand_backs.items(), key=lambda kv: -kv[1])
    found.append(charts.bar([k for k, _ in reasons], [v for _, v in reasons], horizontal=True, name="hand-backs",
                            title="Leads handed back to marketing, by reason"))
    return found


# --- the HTML file ------------------------------------------------------------------------

_ENVIRONMENT = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENVIRONMENT.filters["value"] = format_value
_ENVIRONMENT.filters["percent"] = lambda v: format_value(v, "rate")
_ENVIRONMENT.filters["count"] = lambda v: format_value(v, "count")

TEMPLATE = _ENVIRONMENT.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sales and marketing meeting — {{ m.period.label() }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; margin: 0 auto; max-width: 1040px; padding: 24px; }
h1 { font-size: 26px; margin-bottom: 0; } h2 { font-size: 19px; margin-top: 36px; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; margin-top: 18px; }
.card { border: 1px solid #e3e3e3; border-radius: 8px; padding: 10px 14px; }
.card .label { color: #555; font-size: 13px; } .card .value { font-size: 24px; font-weight: 600; }
.card .before { color: #777; font-size: 13px; } .good { color: #2e7d32; } .bad { color: #c62828; }
ul.changes li { margin: 4px 0; }
figure { margin: 18px 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; }
th, td { padding: 4px 12px 4px 0; text-align: left; border-bottom: 1px solid #eee; }
td.n, th.n { text-align: right; }
.note { color: #666; font-size: 13px; }
@media print { body { max-width: none; } figure { break-inside: avoid; } }
</style>
</head>
<body>
<h1>Sales and marketing meeting</h1>
<p class="sub">{{ m.playbook }} · {{ m.period.label() }} ({{ m.period.days }} days, {{ m.period.timezone }})
 compared with {{ m.previous.label() }} · generated {{ m.generated_at.strftime("%Y-%m-%d %H:%M") }} UTC</p>

<div class="cards">
{% for f in m.figures %}
<div class="card"><div class="label">{{ f.label[0]|upper }}{{ f.label[1:] }}</div>
<div class="value">{{ f.current|value(f.kind) }}</div>
<div class="before">before: {{ f.previous|value(f.kind) }}{% if f.matters() %}
 <span class="{{ 'good' if f.good else ('bad' if f.good is not none and not f.good else '') }}">
 ({{ '+' if f.change > 0 else '−' }}{{ (f.change if f.change > 0 else -f.change)|value(f.kind) }}{{ ' points' if f.kind == 'rate' else '' }})</span>{% endif %}</div>
</div>
{% endfor %}
</div>

<h2>What changed</h2>
{% if m.sentences %}
<ul class="changes">{% for s in m.sentences %}<li>{{ s }}</li>{% endfor %}</ul>
{% else %}
<p>No figure moved enough to mention (rates by 2 points, counts by 5 %, times by 10 %).</p>
{% endif %}

<h2>Funnel</h2>
{{ svg[0] }}
{{ svg[1] }}
{% if m.funnel.total.leakage %}
<table><tr><th>left the funnel at</th><th>to</th><th>reason</th><th class="n">leads</th></tr>
{% for leak in m.funnel.total.leakage %}<tr><td>{{ leak.stage }}</td><td>{{ leak.to }}</td><td>{{ leak.reason or "—" }}</td><td class="n">{{ leak.count|count }}</td></tr>
{% endfor %}</table>
<p class="note">Leads created in the period, counted by the highest stage each reached by now.</p>
{% endif %}

<h2>Marketing's volume and quality</h2>
{{ svg[2] }}
{% for c in m.sla.marketing %}
<p>{{ c.commitment }}: target {{ c.target|value('rate' if c.kind != 'mql_volume' else 'count') }}{% if c.kind == 'mql_volume' %} a week or month (as agreed){% endif %},
 actual {{ c.actual|value('rate' if c.kind != 'mql_volume' else 'count') }} —
 {% if c.met is none %}nothing to judge yet{% elif c.met %}<span class="good">kept</span>{% else %}<span class="bad">missed</span>{% endif %}</p>
{% endfor %}

<h2>Velocity</h2>
{{ svg[3] }}
<table><tr><th>measure</th><th class="n">count</th><th class="n">median</th><th class="n">p75</th><th class="n">p90</th></tr>
{% for t in m.velocity.time_in_stage %}<tr><td>time in {{ t.name }}</td><td class="n">{{ t.time.overall.count|count }}</td><td class="n">{{ t.time.overall.median|value('duration') }}</td><td class="n">{{ t.time.overall.p75|value('duration') }}</td><td class="n">{{ t.time.overall.p90|value('duration') }}</td></tr>
{% endfor %}
{% for label, line in [("sales cycle (created → won)", m.velocity.sales_cycle), ("hand-off → first touch", m.velocity.mql_to_first_touch)] %}<tr><td>{{ label }}</td><td class="n">{{ line.overall.count|count }}</td><td class="n">{{ line.overall.median|value('duration') }}</td><td class="n">{{ line.overall.p75|value('duration') }}</td><td class="n">{{ line.overall.p90|value('duration') }}</td></tr>
{% endfor %}</table>
{% if m.velocity.stale_counts %}<p>Stale deals now: {% for stage, n in m.velocity.stale_counts.items() %}{{ n|count }} in {{ stage }} (over {{ m.velocity.stale_limits[stage]|round(1) }} days){{ ", " if not loop.last }}{% endfor %}.</p>{% endif %}

<h2>Sources</h2>
{{ svg[4] }}
{% if m.best %}
<p><strong>Best sources</strong>: {% for v in m.best %}{{ v.channel }} ({{ v.win_rate|percent }} of {{ v.leads|count }} leads won){{ ", " if not loop.last }}{% endfor %}.
<strong>Worst</strong>: {% for v in m.worst %}{{ v.channel }} ({{ v.win_rate|percent }} of {{ v.leads|count }}){{ ", " if not loop.last }}{% endfor %}.</p>
{% else %}<p class="note">Too few leads per source to name a best and a worst (at least {{ min_leads }} leads each, two sources).</p>{% endif %}
<table><tr><th>source</th><th class="n">leads</th><th class="n">qualified</th><th class="n">won</th><th class="n">won value (W-shaped)</th></tr>
{% for r in top_sources %}<tr><td>{{ r.channel }}</td><td class="n">{{ r.leads|count }}</td><td class="n">{{ r.mql_rate|percent }}</td><td class="n">{{ r.win_rate|percent }}</td><td class="n">{{ r.won_value.w_shaped|count }}</td></tr>
{% endfor %}</table>

<h2>The SLA: sales' commitments</h2>
{{ svg[5] }}
<table><tr><th>team</th><th>commitment</th><th class="n">met</th><th class="n">breached</th><th class="n">running</th><th class="n">met %</th></tr>
{% for c in m.sla.compliance %}<tr><td>{{ c.group or "—" }}</td><td>{{ c.commitment }}</td><td class="n">{{ c.met|count }}</td><td class="n">{{ c.breached|count }}</td><td class="n">{{ c.running|count }}</td><td class="n">{{ c.rate|percent }}</td></tr>
{% endfor %}</table>

<h2>Hand-backs</h2>
{{ svg[6] }}

<h2>Content</h2>
<p>Sales shared {{ m.content.items_shared|count }} of {{ m.content.items|count }} content items in the period
 ({{ m.content.used_by_sales|percent }}).{% if m.content.not_shared %} Not shared: {% for i in m.content.not_shared[:12] %}{{ i.title }}{{ ", " if not loop.last }}{% endfor %}{% if m.content.not_shared|length > 12 %} and {{ m.content.not_shared|length - 12 }} more{% endif %}.{% endif %}</p>
{% if m.content.content %}
<table><tr><th>content</th><th class="n">won leads</th><th class="n">lost leads</th><th class="n">win rate</th><th>95 % interval</th></tr>
{% for i in m.content.content[:15] %}<tr><td>{{ i.title }} ({{ i.kind }})</td><td class="n">{{ i.won|count }}</td><td class="n">{{ i.lost|count }}</td><td class="n">{{ i.win_rate|percent }}</td><td>{% if i.low is not none %}{{ i.low|percent }} – {{ i.high|percent }}{% if i.few %} · few{% endif %}{% endif %}</td></tr>
{% endfor %}</table>
<p class="note">Of the leads won ({{ m.content.won_leads|count }}) and lost ({{ m.content.lost_leads|count }}) in the period, those that had consumed each item before closing. Few: fewer than 20 closed leads, read it as a hint.</p>
{% endif %}
</body>
</html>
""")


def render_html(meeting: Meeting) -> str:
    svg = [Markup(f'<figure>{chart.svg()}</figure>') for chart in meeting.charts]
    top = [r for r in sorted(meeting.sources.channels, key=lambda r: -r.leads)[:SOURCES_SHOWN] if r.leads]
    return TEMPLATE.render(m=meeting, svg=svg, top_sources=top, min_leads=MIN_SOURCE_LEADS)


def write_meeting(meeting: Meeting, out: Path, *, png: bool = False) -> list[Path]:
    """Write the HTML file (and, with `png`, a PNG of each chart beside it: OUT-NAME.png)."""
    out.write_text(render_html(meeting), encoding="utf-8")
    written = [out]
    if png:
        for chart in meeting.charts:
            path = out.with_name(f"{out.stem}-{chart.name}.png")
            path.write_bytes(chart.png())
            written.append(path)
    return written

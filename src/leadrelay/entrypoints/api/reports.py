"""/api/v1/reports: the numbers both teams share, as JSON, or CSV (`format=csv`, or
`Accept: text/csv`; `table` picks one of a report's tables), and the meeting report as HTML.

Periods are whole days in the playbook's time zone: `from` and `to` are dates (YYYY-MM-DD), both
included; without `to` the period ends today, without `from` it is 30 days long."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized
from leadrelay.reports.content import ContentReport, content_report
from leadrelay.reports.export import tables_of
from leadrelay.reports.funnel import FunnelReport, funnel_report
from leadrelay.reports.meeting import build_meeting, render_html
from leadrelay.reports.periods import Period
from leadrelay.reports.sla import sla_report
from leadrelay.reports.sources import SourcesReport, sources_report
from leadrelay.reports.velocity import VelocityReport, velocity_report
from leadrelay.services.analytics import run_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], dependencies=[Depends(authorized)])
T = TypeVar("T")

From = Annotated[date | None, Query(alias="from", description="First day (YYYY-MM-DD, the playbook's time zone; "
                                                               "default: 30 days before `to`).")]
To = Annotated[date | None, Query(alias="to", description="Last day, included (default: today).")]
Format = Annotated[Literal["json", "csv"] | None, Query(
    alias="format", description="json (default), or csv (one table: see `table`). `Accept: text/csv` asks for CSV too.")]
TableName = Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$",
                                        description="With CSV: which of the report's tables (default: its first).")]
Breakdown = Literal["source", "medium", "campaign", "segment", "team", "rep"]


def _period(app: App, first: date | None, last: date | None) -> Period:
    return Period.of(first, last, app.playbook.timezone)


def _answer(request: Request, report: Any, name: str, format_: str | None, table: str | None) -> Any:
    """The report itself (JSON), or one of its tables as CSV."""
    wants_csv = format_ == "csv" or (format_ is None and "text/csv" in request.headers.get("accept", ""))
    if not wants_csv:
        if table is not None:
            raise InvalidInput("table: only with format=csv", "invalid_table")
        return report
    tables = tables_of(report)
    chosen = table or next(iter(tables))
    if chosen not in tables:
        raise InvalidInput(f"table: {chosen!r} is not one of {', '.join(tables)}", "invalid_table")
    return Response(tables[chosen].csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{chosen}.csv"'})


def _run(app: App, report: Callable[[Connection], T]) -> T:
    return run_report(app.engine, app.read_uow, app.playbook, utc_now(), report)


@router.get("/funnel", response_model=FunnelReport)
def funnel(
    request: Request, app: AppDep, first: From = None, last: To = None,
    cohort: Annotated[str, Query(max_length=64, description="`created`: the leads created in the period; or a funnel "
                                                            "stage (e.g. `mql`): the leads that entered it in the period.")]
    = "created",
    breakdown: Annotated[Breakdown | None, Query(description="Also per source, medium, campaign (of the first touch), "
                                                          "segment (company size), team or rep (of the latest deal).")]
    = None,
    format_: Format = None, table: TableName = None,
) -> Any:
    """Of a cohort of leads: how many reached each stage (by the highest stage reached, as of now),
    the conversion from each stage to the next and end to end, leakage (recycled, disqualified,
    lost) by stage and reason, and where the leads are now. Tables (CSV): stages, leakage."""
    period = _period(app, first, last)
    report = _run(app, lambda c: funnel_report(c, app.playbook, period, cohort=cohort, breakdown=breakdown))
    return _answer(request, report, "funnel", format_, table)


@router.get("/velocity", response_model=VelocityReport)
def velocity(
    request: Request, app: AppDep, first: From = None, last: To = None,
    breakdown: Annotated[Breakdown | None, Query(description="Also time in stage and sales cycle per group.")] = None,
    stale_days: Annotated[float, Query(gt=0, le=3650, description="Days in a stage after which an open deal is stale "
                                                                   "(unless the SLA sets one for the stage).")] = 30,
    limit: Annotated[schemas.Limit, Query(description="Stale deals listed, at most.")] = 100,
    format_: Format = None, table: TableName = None,
) -> Any:
    """Time in each stage (median, p75, p90) of the stays that ended in the period, sales-cycle
    length (created → won), hand-off → first touch, by month; stale deals now. Tables (CSV):
    durations, groups, stale."""
    period = _period(app, first, last)
    now = utc_now()
    report = _run(app, lambda c: velocity_report(c, app.playbook, period, now, breakdown=breakdown,
                                                 stale_days=stale_days, limit=limit))
    return _answer(request, report, "velocity", format_, table)


@router.get("/sources", response_model=SourcesReport)
def sources(
    request: Request, app: AppDep, first: From = None, last: To = None,
    breakdown: Annotated[Literal["source", "medium", "campaign"], Query(description="What to credit.")] = "source",
    format_: Format = None, table: TableName = None,
) -> Any:
    """Leads, MQLs, SQLs, won deals and won value of the period credited to sources (or media, or
    campaigns) by first touch, last touch, linear and W-shaped attribution; and of the leads
    created in the period, per source, the share that reached MQL and was won. Tables (CSV):
    attribution, conversion."""
    period = _period(app, first, last)
    report = _run(app, lambda c: sources_report(c, app.playbook, period, breakdown=breakdown))
    return _answer(request, report, "sources", format_, table)


@router.get("/content", response_model=ContentReport)
def content(
    request: Request, app: AppDep, first: From = None, last: To = None,
    breakdown: Annotated[Literal["kind", "rep", "team"], Query(description="Usage by sales per kind, rep or team.")]
    = "kind",
    format_: Format = None, table: TableName = None,
) -> Any:
    """The share of content items sales shared with leads in the period (by kind, rep or team), the
    items nobody shared, and for each item the leads won and lost in the period that had consumed it
    (win rate with a 95 % interval; `few` under 20). Tables (CSV): items, usage."""
    period = _period(app, first, last)
    report = _run(app, lambda c: content_report(c, app.playbook, period, breakdown=breakdown))
    return _answer(request, report, "content", format_, table)


@router.get("/meeting", response_class=HTMLResponse)
def meeting(app: AppDep, first: From = None, last: To = None) -> HTMLResponse:
    """The joint meeting report: one self-contained HTML page (charts inline, nothing fetched)."""
    period = _period(app, first, last)
    now = utc_now()
    built = _run(app, lambda c: build_meeting(c, app.playbook, period, now))
    return HTMLResponse(render_html(built))


@router.get("/sla", response_model=schemas.SlaReportOut)
def sla(
    request: Request,
    app: AppDep,
    since: Annotated[schemas.Moment | None, Query(alias="from", description="Start (default: 30 days ago).")] = None,
    until: Annotated[schemas.Moment | None, Query(alias="to", description="End, excluded (default: now).")] = None,
    by: Annotated[str, Query(pattern="^(owner|team)$", description="Compliance per rep (owner) or per team.")] = "owner",
    limit: Annotated[schemas.Limit, Query(description="Clocks at risk and breaches listed, at most.")] = 100,
    format_: Format = None, table: TableName = None,
) -> Any:
    """Whether each team keeps the SLA: sales commitments met and breached per rep or team, time to
    answer and to first touch (median, p90), clocks at risk now, breaches; marketing's MQL volume
    against target and its acceptance and SQL rates by source; hand-back reasons. Tables (CSV):
    compliance, marketing, breaches, hand_backs."""
    now = utc_now()
    until = until or now
    since = since or until - timedelta(days=30)
    if since >= until:
        raise InvalidInput("from: must be before to", "invalid_period")
    report = _run(app, lambda c: sla_report(c, app.playbook, since, until, now, by=by, limit=limit))
    answer = _answer(request, report, "sla", format_, table)
    if answer is not report:
        return answer
    return schemas.SlaReportOut(
        since=report.since, until=report.until,
        compliance=[schemas.ComplianceOut(**asdict(row), rate=row.rate) for row in report.compliance],
        response={k: schemas.Spread(**v) for k, v in report.response.items()},
        at_risk=[schemas.ClockRow(**row) for row in report.at_risk],
        breaches=[schemas.ClockRow(**row) for row in report.breaches],
        marketing=[schemas.MarketingOut(**asdict(row)) for row in report.marketing],
        hand_backs=report.hand_backs,
    )

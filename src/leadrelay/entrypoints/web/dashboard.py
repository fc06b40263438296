"""The dashboards: both teams' numbers for a period beside the period before — the changes in
plain sentences, headline figures, and charts (funnel, conversion, MQL volume against target,
time in stage, sources, SLA compliance, hand-back reasons). The same figures as the meeting
report, which can be downloaded from here."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from leadrelay.adapters.users import Session
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.session import page
from leadrelay.entrypoints.web.templating import render
from leadrelay.reports.compare import format_value
from leadrelay.reports.meeting import Meeting, build_meeting, render_html
from leadrelay.reports.periods import Period
from leadrelay.services.analytics import run_report

router = APIRouter(prefix="/dashboard", include_in_schema=False)
DashboardViewer = Annotated[Session, Depends(page("dashboard"))]
Day = Annotated[date | None, Query()]


def _meeting(app: App, first: date | None, last: date | None) -> Meeting:
    period = Period.of(first, last, app.playbook.timezone)
    return run_report(app.engine, app.read_uow, app.playbook, utc_now(),
                      lambda connection: build_meeting(connection, app.playbook, period, utc_now()))


@router.get("", response_class=HTMLResponse)
def dashboard(request: Request, app: AppDep, session: DashboardViewer, first: Annotated[date | None, Query(alias="from")] = None,
              last: Annotated[date | None, Query(alias="to")] = None) -> HTMLResponse:
    meeting = _meeting(app, first, last)
    charts = [Markup(chart.svg()) for chart in meeting.charts]  # drawn here from numbers: no user markup
    return render(request, "dashboard.html", session, active="dashboard", m=meeting, charts=zip(meeting.charts, charts),
                  value=format_value)


@router.get("/meeting-report.html", response_class=HTMLResponse)
def meeting_report(app: AppDep, session: DashboardViewer, first: Annotated[date | None, Query(alias="from")] = None,
                   last: Annotated[date | None, Query(alias="to")] = None) -> HTMLResponse:
    """The period's meeting report as one self-contained HTML file."""
    meeting = _meeting(app, first, last)
    name = f"meeting-{meeting.period.first.isoformat()}-{meeting.period.last.isoformat()}.html"
    return HTMLResponse(render_html(meeting), headers={"Content-Disposition": f'attachment; filename="{name}"'})

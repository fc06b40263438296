"""/api/v1/reports: the numbers both teams share (JSON)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, admin_key
from leadrelay.reports.sla import sla_report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], dependencies=[Depends(admin_key)])


@router.get("/sla", response_model=schemas.SlaReportOut)
def sla(
    app: AppDep,
    since: Annotated[schemas.Moment | None, Query(alias="from", description="Start (default: 30 days ago).")] = None,
    until: Annotated[schemas.Moment | None, Query(alias="to", description="End, excluded (default: now).")] = None,
    by: Annotated[str, Query(pattern="^(owner|team)$", description="Compliance per rep (owner) or per team.")] = "owner",
    limit: Annotated[schemas.Limit, Query(description="Clocks at risk and breaches listed, at most.")] = 100,
) -> schemas.SlaReportOut:
    """Whether each team keeps the SLA: sales commitments met and breached per rep or team, time to
    answer and to first touch (median, p90), clocks at risk now, breaches; marketing's MQL volume
    against target and its acceptance and SQL rates by source; hand-back reasons."""
    now = utc_now()
    until = until or now
    since = since or until - timedelta(days=30)
    if since >= until:
        raise InvalidInput("from: must be before to", "invalid_period")
    with app.read_uow() as uow:
        report = sla_report(uow.connection, app.playbook, since, until, now, by=by, limit=limit)
    return schemas.SlaReportOut(
        since=report.since, until=report.until,
        compliance=[schemas.ComplianceOut(**asdict(row), rate=row.rate) for row in report.compliance],
        response={k: schemas.Spread(**v) for k, v in report.response.items()},
        at_risk=[schemas.ClockRow(**row) for row in report.at_risk],
        breaches=[schemas.ClockRow(**row) for row in report.breaches],
        marketing=[schemas.MarketingOut(**asdict(row)) for row in report.marketing],
        hand_backs=report.hand_backs,
    )

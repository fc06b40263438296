"""Marketing's views: the MQL queue (handed off, waiting for sales to accept), hand-backs with
their reasons (the feedback loop), recycled leads back in nurture, and leads by source."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from leadrelay.adapters.deals import DealFilter
from leadrelay.adapters.repository import LeadFilter
from leadrelay.adapters.users import Session
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.board import clock_state
from leadrelay.entrypoints.web.session import page
from leadrelay.entrypoints.web.templating import render
from leadrelay.reports.hand_backs import hand_backs
from leadrelay.reports.sla import hand_back_reasons
from leadrelay.services import deals as deal_service
from leadrelay.services import leads as lead_service
from leadrelay.services import nurture as nurture_service

router = APIRouter(prefix="/marketing", include_in_schema=False)
MarketingViewer = Annotated[Session, Depends(page("marketing"))]
Before = Annotated[int | None, Query(ge=1, le=2**53)]
PAGE = 50
SEQUENCE_STATS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "mqls")
TABS = [("", "MQL queue"), ("hand-backs", "Hand-backs"), ("nurture", "In nurture"), ("sources", "Sources")]


def _page(request: Request, session: Session, tab: str, **context: Any) -> HTMLResponse:
    return render(request, "marketing.html", session, active="marketing", tab=tab, tabs=TABS, **context)


@router.get("", response_class=HTMLResponse)
def mql_queue(request: Request, app: AppDep, session: MarketingViewer) -> HTMLResponse:
    """Leads handed to sales and not yet accepted, oldest waiting first on the page's clock."""
    now = utc_now()
    cards = deal_service.board(app.read_uow(), app.playbook, DealFilter(stage=app.playbook.mql_stage),
                               per_column=PAGE, now=now)[app.playbook.mql_stage] \
        if app.playbook.mql_stage in app.playbook.sales_stages else []
    rows = [{"deal": card.deal, "company": card.account.get("name") or card.deal.lead.fields.get("company"),
             "score": round(deal_service.total_score(card.deal.lead, app.playbook, now)), "clock": card.clock,
             "clock_state": clock_state(card.clock, now)} for card in cards]
    return _page(request, session, "", queue=rows)


@router.get("/hand-backs", response_class=HTMLResponse)
def hand_back_view(request: Request, app: AppDep, session: MarketingViewer, before: Before = None,
                   reason: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    with app.read_uow() as uow:
        rows = hand_backs(uow.connection, before=before, limit=PAGE, reason=reason or None)
        reasons = hand_back_reasons(uow.connection, None, None)
    return _page(request, session, "hand-backs", hand_backs=rows, reasons=sorted(reasons.items(), key=lambda r: -r[1]),
                 reason=reason, more=rows[-1]["deal_id"] if len(rows) == PAGE else None)


@router.get("/nurture", response_class=HTMLResponse)
def nurture(request: Request, app: AppDep, session: MarketingViewer, before: Before = None) -> HTMLResponse:
    """The nurture sequences, step by step (sent, opened, clicked, unsubscribed, MQLs produced),
    and the recycled leads: handed back, nurtured until they qualify again."""
    found, more = lead_service.find_leads(app.read_uow(), app.playbook, LeadFilter(stage=app.playbook.hand_back_stage),
                                          before=before, limit=PAGE, now=utc_now())
    sequences = nurture_service.analytics(app.read_uow(), app.playbook)
    return _page(request, session, "nurture", recycled=found, more=more, sequences=sequences,
                 stat_names=SEQUENCE_STATS)


@router.get("/sources", response_class=HTMLResponse)
def sources(request: Request, app: AppDep, session: MarketingViewer) -> HTMLResponse:
    """Leads per source, and how many of them reached MQL and became customers."""
    playbook = app.playbook
    with app.read_uow() as uow:
        counts = uow.leads.source_stage_counts()
    mql_rank = playbook.rank(playbook.mql_stage)
    won = {stage.id for stage in playbook.stages.values() if stage.outcome == "won"}
    table: dict[str, dict[str, int]] = defaultdict(lambda: {"leads": 0, "mqls": 0, "customers": 0})
    for (source, stage), count in counts.items():
        row = table[source or "(unknown)"]
        row["leads"] += count
        if playbook.rank(stage) >= mql_rank:
            row["mqls"] += count
        if stage in won:
            row["customers"] += count
    rows = sorted(table.items(), key=lambda item: -item[1]["leads"])
    return _page(request, session, "sources", sources=rows)

"""A lead's page: profile and fit fields, score with its breakdown, the hand-off package, the
timeline, stage history, SLA clocks, touches and notes (and logging one); a deal's address
leads to its lead's page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadrelay.adapters.deals import DealFilter
from leadrelay.adapters.users import Session
from leadrelay.bootstrap import App
from leadrelay.domain.access import may_move_deal, may_see_deal, may_see_lead
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput, PermissionDenied
from leadrelay.domain.model import TOUCH_KINDS, Touch
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.api.leads import event_cursor
from leadrelay.entrypoints.web.board import clock_state
from leadrelay.entrypoints.web.session import Acting, Viewer
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import deals as deal_service
from leadrelay.services import leads as lead_service
from leadrelay.services.deals import BoardCard
from leadrelay.services.prediction import predict_lead

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]
TIMELINE_PAGE = 50


def _deals_of(app: App, session: Session, lead_id: int) -> list[BoardCard]:
    """The lead's deals, newest first, if the user may see the lead (else 403)."""
    cards = deal_service.find_deals(app.read_uow(), DealFilter(lead_id=lead_id), before=None, limit=50)
    if not may_see_lead(session.user, [(c.deal.team, c.deal.owner) for c in cards], app.playbook.routing):
        raise PermissionDenied(f"lead {lead_id} is not one of yours")
    return cards


@router.get("/deals/{deal_id}")
def deal_page(app: AppDep, session: Viewer, deal_id: Id) -> Response:
    view = deal_service.view_deal(app.read_uow(), deal_id)
    if not may_see_deal(session.user, view.deal.team, view.deal.owner, app.playbook.routing):
        raise PermissionDenied(f"deal {deal_id} belongs to another team")
    return RedirectResponse(f"/leads/{view.deal.lead.id}", status_code=303)


@router.get("/leads/{lead_id}", response_class=HTMLResponse)
def lead_page(request: Request, app: AppDep, session: Viewer, lead_id: Id,
              before: Annotated[str | None, Query(max_length=200)] = None,
              logged: Annotated[str | None, Query(max_length=40)] = None) -> HTMLResponse:
    now = utc_now()
    playbook = app.playbook
    view = lead_service.view_lead(app.read_uow(), playbook, lead_id, now)
    lead = view.lead
    cards = _deals_of(app, session, lead.id)  # type: ignore[arg-type]
    deal = cards[0].deal if cards else None
    events = lead_service.timeline(app.read_uow(), lead.id, before=event_cursor(before),  # type: ignore[arg-type]
                                   limit=TIMELINE_PAGE)
    more = (schemas.encode_cursor(events[-1][1].timestamp.isoformat(), events[-1][0])
            if len(events) == TIMELINE_PAGE else None)
    touches = deal_service.touches(app.read_uow(), deal.id, before=None, limit=100) if deal else []  # type: ignore[arg-type]
    activity = deal_service.view_deal(app.read_uow(), deal.id).activity if deal else []  # type: ignore[arg-type]
    fields = [(spec.label or spec.name.replace("_", " ").capitalize(), lead.fields[name])
              for name, spec in playbook.fields.items() if lead.fields.get(name) not in (None, "")]
    clocks: list[dict[str, Any]] = [{**clock, "state": clock_state(clock, now) if clock["status"] == "running"
                                     else None} for clock in view.clocks]
    prediction = predict_lead(playbook, lead, now)  # p_win and its top reasons (None without a model)
    return render(
        request, "lead.html", session, lead=lead, view=view, deal=deal, cards=cards, fields=fields,
        prediction=prediction,
        total=round(lead.fit + view.engagement, 1), events=events, more=more, touches=touches, activity=activity,
        clocks=clocks, touch_kinds=TOUCH_KINDS, logged=logged,
        may_log=deal is not None and deal.is_open and may_move_deal(session.user, deal.team, deal.owner,
                                                                     playbook.routing),
    )


@router.post("/leads/{lead_id}/touches")
def log_touch(
    app: AppDep, session: Acting, lead_id: Id, kind: Annotated[str, Form(max_length=32)],
    outcome: Annotated[str, Form(max_length=200)] = "", note: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Log a call, email, meeting or note on the lead's open deal; it meets the SLA clocks it
    answers (first touch, attempts)."""
    cards = _deals_of(app, session, lead_id)
    deal = next((card.deal for card in cards if card.deal.is_open), None)
    if deal is None:
        raise InvalidInput(f"lead {lead_id} has no open deal to log a touch on", "no_open_deal")
    if not may_move_deal(session.user, deal.team, deal.owner, app.playbook.routing):
        raise PermissionDenied("only the deal's owner, their manager or an admin logs touches on it")
    if kind not in TOUCH_KINDS:
        raise InvalidInput(f"kind: {kind!r} is not a kind of touch ({', '.join(TOUCH_KINDS)})", "invalid_touch")
    now = utc_now()
    deal_service.log_touch(app.uow(), app.playbook, deal.id,  # type: ignore[arg-type]
                           Touch(kind=kind, at=now, by=session.user.email, outcome=outcome.strip() or None,
                                 note=note.strip() or None), now)
    return RedirectResponse(f"/leads/{lead_id}?logged={kind}#touches", status_code=303)

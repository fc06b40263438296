"""/api/v1/deals and /api/v1/board: the sales board, each deal with its hand-off package, and
the moves sales makes on it (accept, reject, disqualify, win, lose, move, reassign)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from leadrelay.adapters.deals import DealFilter
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.domain.deals import Deal
from leadrelay.domain.errors import InvalidInput
from leadrelay.domain.model import Touch
from leadrelay.domain.scoring import engagement_at
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, Authorized, authorized
from leadrelay.services import deals as deal_service

router = APIRouter(prefix="/api/v1", tags=["deals"], dependencies=[Depends(authorized)])
DealId = Annotated[int, Path(ge=1, le=schemas.MAX_ID, description="The deal's id.")]
Owner = Annotated[schemas.Text | None, Query(description="Only deals this rep owns.")]
Team = Annotated[schemas.Text | None, Query(description="Only deals of this team (or waiting in this queue).")]
Source = Annotated[schemas.Text | None, Query(description="Only deals whose lead came from this source.")]


def _summary(app: App, deal: Deal, account: dict[str, Any]) -> dict[str, Any]:
    lead = deal.lead
    engagement = engagement_at(lead.engagement, app.playbook.scoring, max(utc_now(), lead.engagement.as_of or utc_now()))
    return {
        "id": deal.id, "lead_id": lead.id, "email": lead.email, "name": lead.fields.get("name"),
        "company": lead.fields.get("company"), "account": account, "stage": deal.stage, "team": deal.team,
        "owner": deal.owner, "source": lead.source,
        "scores": {"fit": lead.fit, "engagement": round(engagement, 3), "total": round(lead.fit + engagement, 3)},
        "opened_at": deal.opened_at, "stage_entered_at": deal.stage_entered_at, "assigned_at": deal.assigned_at,
        "closed_at": deal.closed_at, "outcome": deal.outcome, "close_reason": deal.close_reason, "value": deal.value,
        "routed_by": deal.routed_by,
    }


def _detail(app: App, view: deal_service.DealView) -> schemas.DealDetail:
    with app.read_uow() as uow:
        accounts = uow.deals.accounts_of([view.deal.lead.account_id] if view.deal.lead.account_id else [])
    account = accounts.get(view.deal.lead.account_id or 0, {})
    return schemas.DealDetail(
        **_summary(app, view.deal, {"name": account.get("name"), "domain": account.get("domain")}),
        package=view.deal.package,
        activity=[schemas.DealActivity(**{k: row[k] for k in schemas.DealActivity.model_fields}) for row in view.activity],
        clocks=[schemas.clock_out(row, app.playbook) for row in view.clocks],
    )


def _stage(app: App, stage: str | None) -> str | None:
    if stage is not None and stage not in app.playbook.sales_stages:
        raise InvalidInput(f"stage: {stage!r} is not a sales stage (the board's columns: "
                           f"{', '.join(app.playbook.sales_stages)})", "unknown_stage")
    return stage


@router.get("/board", response_model=schemas.Board)
def get_board(
    app: AppDep, owner: Owner = None, team: Team = None, source: Source = None,
    stage: Annotated[schemas.Text | None, Query(description="Only this column.")] = None,
    per_column: Annotated[schemas.Limit, Query(description="Deals per column, newest first.")] = 50,
) -> schemas.Board:
    """The sales board: a column per sales stage of the playbook, open deals in the open stages,
    won and lost deals in their columns."""
    filters = DealFilter(owner=owner, team=team, source=source, stage=_stage(app, stage))
    columns = deal_service.board(app.read_uow(), app.playbook, filters, per_column=per_column)
    return schemas.Board(columns=[
        schemas.BoardColumn(stage=stage_id, name=app.playbook.stages[stage_id].name,
                            deals=[schemas.DealSummary(**_summary(app, card.deal, card.account)) for card in cards])
        for stage_id, cards in columns.items()
    ])


@router.get("/deals", response_model=schemas.DealPage)
def list_deals(
    app: AppDep, owner: Owner = None, team: Team = None, source: Source = None,
    stage: Annotated[schemas.Text | None, Query(description="Only deals in this stage.")] = None,
    lead_id: Annotated[int | None, Query(ge=1, le=schemas.MAX_ID, description="Only this lead's deals.")] = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$", description="open or closed.")] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.DealPage:
    """Deals, newest first, a page at a time."""
    if stage is not None and stage not in app.playbook.stages:
        raise InvalidInput(f"stage: no stage {stage!r} in the playbook", "unknown_stage")
    filters = DealFilter(owner=owner, team=team, source=source, stage=stage, lead_id=lead_id,
                         open=None if status is None else status == "open")
    cards = deal_service.find_deals(app.read_uow(), filters, before=schemas.cursor_id(cursor), limit=limit)
    return schemas.DealPage(
        items=[schemas.DealSummary(**_summary(app, card.deal, card.account)) for card in cards],
        next_cursor=schemas.encode_cursor(cards[-1].deal.id) if len(cards) == limit else None,
    )


@router.get("/deals/hand-backs", response_model=schemas.HandBacks)
def hand_backs(
    app: AppDep,
    since: Annotated[schemas.Moment | None, Query(alias="from", description="Handed back at or after.")] = None,
    until: Annotated[schemas.Moment | None, Query(alias="to", description="Handed back before.")] = None,
) -> schemas.HandBacks:
    """Marketing's feedback: how many leads sales handed back, by reason."""
    reasons = deal_service.hand_back_report(app.read_uow(), since, until)
    return schemas.HandBacks(reasons=reasons, total=sum(reasons.values()))


@router.get("/deals/{deal_id}", response_model=schemas.DealDetail)
def get_deal(deal_id: DealId, app: AppDep) -> schemas.DealDetail:
    """One deal: the card, its hand-off package (fields, scores, content, pages, webinars, forms,
    touches, timeline) and its activity log."""
    return _detail(app, deal_service.view_deal(app.read_uow(), deal_id))


def _act(app: App, key: Any, deal_id: int, action: str, **values: Any) -> schemas.DealDetail:
    view = deal_service.act(app.uow(), app.playbook, deal_id, action, by=f"api:{key.name}", now=utc_now(), **values)
    return _detail(app, view)


@router.post("/deals/{deal_id}/accept", response_model=schemas.DealDetail)
def accept(deal_id: DealId, body: schemas.DealAction, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Sales accepts the hand-off (the lead becomes sales-accepted)."""
    return _act(app, key, deal_id, "accept", note=body.note)


@router.post("/deals/{deal_id}/reject", response_model=schemas.DealDetail)
def reject(deal_id: DealId, body: schemas.ReasonAction, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Hand the lead back to marketing, with one of the playbook's hand-back reasons."""
    return _act(app, key, deal_id, "reject", reason=body.reason, note=body.note)


@router.post("/deals/{deal_id}/disqualify", response_model=schemas.DealDetail)
def disqualify(deal_id: DealId, body: schemas.ReasonAction, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Take the lead out of the funnel, with one of the playbook's disqualify reasons."""
    return _act(app, key, deal_id, "disqualify", reason=body.reason, note=body.note)


@router.post("/deals/{deal_id}/win", response_model=schemas.DealDetail)
def win(deal_id: DealId, body: schemas.WinDeal, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Mark the deal won, with its value."""
    return _act(app, key, deal_id, "win", value=body.value, note=body.note)


@router.post("/deals/{deal_id}/lose", response_model=schemas.DealDetail)
def lose(deal_id: DealId, body: schemas.ReasonAction, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Mark the deal lost, with one of the playbook's lost reasons."""
    return _act(app, key, deal_id, "lose", reason=body.reason, note=body.note)


@router.post("/deals/{deal_id}/move", response_model=schemas.DealDetail)
def move(deal_id: DealId, body: schemas.MoveDeal, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Move the deal to another stage, as the playbook allows."""
    return _act(app, key, deal_id, "move", to=body.to, reason=body.reason, note=body.note)


@router.post("/deals/{deal_id}/reassign", response_model=schemas.DealDetail)
def reassign(deal_id: DealId, body: schemas.Reassign, app: AppDep, key: Authorized) -> schemas.DealDetail:
    """Give the deal to another owner (or take it from the queue)."""
    return _act(app, key, deal_id, "reassign", owner=body.owner, note=body.note)


@router.post("/deals/{deal_id}/touches", response_model=schemas.TouchOut, status_code=201)
def log_touch(deal_id: DealId, body: schemas.TouchIn, app: AppDep, key: Authorized,
              response: Response) -> schemas.TouchOut:
    """Log a call, email, meeting or note on a deal, or the lead's email reply (`email_reply`)."""
    now = utc_now()
    touch = Touch(body.kind, body.at or now, body.by or f"api:{key.name}", body.outcome, body.note)
    stored = deal_service.log_touch(app.uow(), app.playbook, deal_id, touch, now)
    response.headers["Location"] = f"/api/v1/deals/{deal_id}/touches"
    return schemas.TouchOut(**stored)


@router.get("/deals/{deal_id}/touches", response_model=schemas.TouchPage)
def list_touches(
    deal_id: DealId, app: AppDep, limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.TouchPage:
    """The deal's touches, the last logged first."""
    rows = deal_service.touches(app.read_uow(), deal_id, before=schemas.cursor_id(cursor), limit=limit)
    return schemas.TouchPage(items=[schemas.TouchOut(**row) for row in rows],
                             next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None)

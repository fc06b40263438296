"""The sales board: a column per sales stage, cards that move by drag and drop (or the
keyboard), reject and disqualify with the playbook's reasons; updates without a reload."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from leadrelay.adapters.deals import DealFilter
from leadrelay.adapters.users import Session
from leadrelay.bootstrap import App
from leadrelay.domain.access import Role, may_move_deal, may_reassign, teams_of
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import PermissionDenied
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.session import Acting, page
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import deals as deal_service
from leadrelay.services.deals import BoardCard, total_score

router = APIRouter(include_in_schema=False)
BoardViewer = Annotated[Session, Depends(page("board"))]
PER_COLUMN = 60
Text = Annotated[str | None, Query(max_length=320)]


def clock_state(clock: dict[str, Any] | None, now: datetime) -> str | None:
    """green before the warning time, amber until due, red once due (breached)."""
    if clock is None:
        return None
    if now >= clock["due_at"]:
        return "red"
    return "amber" if now >= clock["warn_at"] else "green"


def _card(app: App, card: BoardCard, session: Session, now: datetime) -> dict[str, Any]:
    deal, lead = card.deal, card.deal.lead
    playbook = app.playbook
    stage = playbook.stages[deal.stage]
    return {
        "id": deal.id, "lead_id": lead.id, "name": lead.fields.get("name") or lead.email,
        "email": lead.email, "company": lead.fields.get("company") or card.account.get("name") or "",
        "score": round(total_score(lead, playbook, now)), "owner": deal.owner, "team": deal.team,
        "owner_name": playbook.routing.name_of(deal.owner) if deal.owner else None,
        "source": lead.source, "stage": deal.stage, "entered": deal.stage_entered_at, "open": deal.is_open,
        "moves": [to for to in stage.moves if to in playbook.stages] if deal.is_open else [],
        "movable": deal.is_open and may_move_deal(session.user, deal.team, deal.owner, playbook.routing),
        "can_reject": deal.is_open and playbook.hand_back_stage in stage.moves,
        "clock": card.clock, "clock_state": clock_state(card.clock, now),
        "outcome": deal.outcome, "value": deal.value,
    }


def _filters(app: App, session: Session, owner: str | None, team: str | None, source: str | None,
             score: float | None) -> DealFilter:
    """What the user asked for, within what their role sees: a rep their own deals, a manager
    their teams' and the unassigned queue."""
    user = session.user
    if user.role is Role.SALES_REP:
        return DealFilter(owner=user.email, team=team or None, source=source or None, score_min=score)
    teams = None
    if user.role is Role.SALES_MANAGER:
        teams = teams_of(user, app.playbook.routing) | {app.playbook.routing.fallback}
    return DealFilter(owner=owner or None, team=team or None, source=source or None, score_min=score, teams=teams)


def _columns(app: App, session: Session, filters: DealFilter) -> list[dict[str, Any]]:
    now = utc_now()
    board = deal_service.board(app.read_uow(), app.playbook, filters, per_column=PER_COLUMN, now=now)
    return [{"stage": stage, "name": app.playbook.stages[stage].name,
             "closed": app.playbook.stages[stage].outcome is not None,
             "cards": [_card(app, card, session, now) for card in cards]}
            for stage, cards in board.items()]


def _reasons(app: App) -> dict[str, list[str]]:
    """Each stage a move needs a reason for, with the playbook's reasons."""
    playbook = app.playbook
    return {stage: list(playbook.reasons_for(stage)) for stage in playbook.stages if playbook.reasons_for(stage)}


@router.get("/board", response_class=HTMLResponse)
def board_page(request: Request, app: AppDep, session: BoardViewer, owner: Text = None, team: Text = None,
               source: Text = None, score: Annotated[float | None, Query(ge=0, le=1000)] = None) -> HTMLResponse:
    filters = _filters(app, session, owner, team, source, score)
    playbook = app.playbook
    owners = sorted({rep.email for team_ in playbook.routing.teams.values() for rep in team_.reps})
    return render(
        request, "board.html", session, active="board", columns=_columns(app, session, filters),
        filters={"owner": owner or "", "team": team or "", "source": source or "", "score": score},
        owners=owners, teams=[playbook.routing.fallback, *playbook.routing.teams],
        reasons=json.dumps(_reasons(app)), stage_names=json.dumps({s.id: s.name for s in playbook.stages.values()}),
        hand_back=playbook.hand_back_stage, may_reassign=may_reassign(session.user),
        won=next((s.id for s in playbook.stages.values() if s.outcome == "won" and s.team == "sales"), ""),
    )


@router.get("/board/columns", response_class=HTMLResponse)
def board_columns(request: Request, app: AppDep, session: BoardViewer, owner: Text = None, team: Text = None,
                  source: Text = None, score: Annotated[float | None, Query(ge=0, le=1000)] = None) -> HTMLResponse:
    """The columns alone: the board script swaps them in after a move, and every half minute."""
    filters = _filters(app, session, owner, team, source, score)
    return render(request, "_columns.html", session, columns=_columns(app, session, filters))


class Move(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: Literal["move", "reject", "disqualify", "reassign"] = "move"
    to: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=2000)
    owner: str | None = Field(None, max_length=320)
    value: float | None = Field(None, ge=0, le=1e12)


@router.post("/board/deals/{deal_id}")
def move_card(app: AppDep, session: Acting, move: Move,
              deal_id: Annotated[int, Path(ge=1, le=2**53)]) -> dict[str, Any]:
    """Move a card as the playbook allows; the refusal's reason is the answer's message."""
    user = session.user
    view = deal_service.view_deal(app.read_uow(), deal_id)
    if not may_move_deal(user, view.deal.team, view.deal.owner, app.playbook.routing):
        raise PermissionDenied(f"deal {deal_id} is not on your board: a {user.role.label} cannot move it")
    if move.action == "reassign" and not may_reassign(user):
        raise PermissionDenied("only a sales manager or an admin reassigns deals")
    action = move.action
    if action == "move" and app.playbook.stages.get(move.to or "") is not None:
        outcome = app.playbook.stages[move.to].outcome  # type: ignore[index]
        action = "win" if outcome == "won" else action
    done = deal_service.act(app.uow(), app.playbook, deal_id, action, by=user.email, now=utc_now(), to=move.to,
                            reason=move.reason or None, note=move.note or None, owner=move.owner, value=move.value)
    return {"ok": True, "id": deal_id, "stage": done.deal.stage, "owner": done.deal.owner}

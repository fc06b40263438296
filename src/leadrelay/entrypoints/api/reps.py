"""/api/v1/reps and /api/v1/tasks: who takes new leads now, and the follow-up tasks
automations give the reps."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized
from leadrelay.services import deals as service

router = APIRouter(prefix="/api/v1", tags=["reps"], dependencies=[Depends(authorized)])


@router.get("/reps", response_model=list[schemas.Rep])
def list_reps(app: AppDep) -> list[schemas.Rep]:
    """The playbook's reps, each with their teams, open deals, and whether they get new leads now."""
    return [schemas.Rep(**vars(rep)) for rep in service.reps(app.read_uow(), app.playbook, utc_now())]


@router.put("/reps/{email}/away", status_code=204)
def set_away(email: Annotated[str, Path(max_length=320)], body: schemas.RepAway, app: AppDep) -> Response:
    """Mark a rep out of office until a moment, or inactive: routing skips them meanwhile (their
    turn in the rotation is kept; they do not get a burst of leads on return)."""
    service.set_away(app.uow(), app.playbook, email, until=body.away_until, inactive=body.inactive, note=body.note,
                     now=utc_now())
    return Response(status_code=204)


@router.get("/tasks", response_model=schemas.TaskPage)
def list_tasks(
    app: AppDep,
    owner: Annotated[schemas.Text | None, Query(description="Only this rep's tasks.")] = None,
    lead_id: Annotated[int | None, Query(ge=1, le=schemas.MAX_ID)] = None,
    status: Annotated[str, Query(pattern="^(open|all)$", description="open (default) or all.")] = "open",
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.TaskPage:
    """Follow-up tasks, newest first."""
    found = service.tasks(app.read_uow(), owner=owner, lead_id=lead_id, open_only=status == "open",
                          before=schemas.cursor_id(cursor), limit=limit)
    return schemas.TaskPage(items=[schemas.TaskOut(**asdict(task)) for task in found],
                            next_cursor=schemas.encode_cursor(found[-1].id) if len(found) == limit else None)


@router.post("/tasks/{task_id}/done", status_code=204)
def complete_task(task_id: Annotated[int, Path(ge=1, le=schemas.MAX_ID)], app: AppDep) -> Response:
    service.complete_task(app.uow(), task_id, utc_now())
    return Response(status_code=204)

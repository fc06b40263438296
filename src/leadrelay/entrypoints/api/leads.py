"""/api/v1/leads: find, read, create or update, and move leads; a lead's event timeline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from leadrelay.adapters.repository import LeadFilter
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput, LeadNotFound
from leadrelay.domain.model import Lead, normalize_email
from leadrelay.domain.playbook import Playbook
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import (
    AppDep,
    Authorized,
    application,
    authorized,
    writer,
)
from leadrelay.services import leads as lead_service
from leadrelay.services.tracking import BatchWriter

router = APIRouter(prefix="/api/v1/leads", tags=["leads"], dependencies=[Depends(authorized)])
LeadId = Annotated[int, Path(ge=1, le=schemas.MAX_ID, description="The lead's id.")]


def _summary(lead: Lead, engagement: float) -> dict:  # type: ignore[type-arg]
    return {
        "id": lead.id, "email": lead.email, "stage": lead.stage, "highest_stage": lead.highest_stage,
        "owner": lead.owner, "source": lead.source, "account_id": lead.account_id, "fields": lead.fields,
        "scores": {"fit": lead.fit, "engagement": round(engagement, 3), "total": round(lead.fit + engagement, 3)},
        "created_at": lead.created_at, "updated_at": lead.updated_at,
    }


def _detail(view: lead_service.LeadView, playbook: Playbook) -> schemas.LeadDetail:
    lead = view.lead
    data = _summary(lead, view.engagement)
    data["scores"].update(fit_breakdown=lead.fit_breakdown,
                          engagement_breakdown={k: round(v, 3) for k, v in view.engagement_breakdown.items()})
    return schemas.LeadDetail(
        **data, stage_entered_at=lead.stage_entered_at, first_touch=lead.first_touch, last_touch=lead.last_touch,
        history=[schemas.StageEntry(**{k: change[k] for k in ("from_stage", "to_stage", "at", "by", "reason")})
                 for change in view.history],
        clocks=[schemas.clock_out(row, playbook) for row in view.clocks],
    )


def _stage(app: App, stage: str | None) -> str | None:
    if stage is not None and stage not in app.playbook.stages:
        raise InvalidInput(f"stage: no stage {stage!r} in the playbook (stages: {', '.join(app.playbook.stages)})",
                           "unknown_stage")
    return stage


@router.get("", response_model=schemas.LeadPage)
def list_leads(
    app: AppDep,
    email: Annotated[schemas.Text | None, Query(description="Only the lead with this email.")] = None,
    stage: Annotated[schemas.Text | None, Query(description="Only leads now in this stage.")] = None,
    owner: Annotated[schemas.Text | None, Query(description="Only leads this rep owns.")] = None,
    source: Annotated[schemas.Text | None, Query(description="Only leads from this source.")] = None,
    score_min: Annotated[float | None, Query(ge=-1e6, le=1e6, description="Total score now at least this.")] = None,
    score_max: Annotated[float | None, Query(ge=-1e6, le=1e6, description="Total score now at most this.")] = None,
    created_after: Annotated[schemas.Moment | None, Query(description="Created at or after (ISO 8601; UTC if no zone).")] = None,
    created_before: Annotated[schemas.Moment | None, Query(description="Created before.")] = None,
    updated_after: Annotated[schemas.Moment | None, Query(description="Updated at or after.")] = None,
    updated_before: Annotated[schemas.Moment | None, Query(description="Updated before.")] = None,
    limit: Annotated[schemas.Limit, Query(description="Leads per page.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> schemas.LeadPage:
    """Leads, newest first, a page at a time."""
    filters = LeadFilter(
        stage=_stage(app, stage), owner=owner, source=source, email=normalize_email(email) if email else None,
        created_after=created_after, created_before=created_before,
        updated_after=updated_after, updated_before=updated_before,
    )
    found, last = lead_service.find_leads(app.read_uow(), app.playbook, filters, before=schemas.cursor_id(cursor),
                                          limit=limit, now=utc_now(), score_min=score_min, score_max=score_max)
    return schemas.LeadPage(
        items=[schemas.LeadSummary(**_summary(item.lead, item.engagement)) for item in found],
        next_cursor=None if last is None else schemas.encode_cursor(last),
    )


@router.post("", response_model=schemas.LeadDetail, responses={201: {"model": schemas.LeadDetail}})
async def upsert_lead(
    body: schemas.LeadIn,
    response: Response,
    app: Annotated[App, Depends(application)],
    batch_writer: Annotated[BatchWriter, Depends(writer)],
) -> schemas.LeadDetail:
    """Create the lead with this email, or update its fields (empty values never erase). Scored at once."""
    now = utc_now()
    event = lead_service.lead_event(app.playbook, body.email, body.fields, now)
    try:
        await run_in_threadpool(lead_service.view_lead, app.read_uow(), app.playbook, event.email, now)
        existed = True
    except LeadNotFound:
        existed = False
    await asyncio.wrap_future(batch_writer.submit([event]))
    view = await run_in_threadpool(lead_service.view_lead, app.read_uow(), app.playbook, event.email, utc_now())
    response.status_code = 200 if existed else 201
    return _detail(view, app.playbook)


@router.get("/{lead_id}", response_model=schemas.LeadDetail)
def get_lead(lead_id: LeadId, app: AppDep) -> schemas.LeadDetail:
    """One lead: fields, stage and highest stage, scores with their breakdown, touches, stage history.
    A lead merged into another answers with the lead it was merged into."""
    return _detail(lead_service.view_lead(app.read_uow(), app.playbook, lead_id, utc_now()), app.playbook)


def event_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """The (timestamp, event id) a `next_cursor` of the timeline names: a time with its zone,
    within the years the API takes, and an id that fits the store."""
    if (parts := schemas.decode_cursor(cursor, 2)) is None:
        return None
    try:
        at = datetime.fromisoformat(parts[0])
    except ValueError:
        at = None
    if (at is None or at.tzinfo is None or not schemas.EARLIEST <= at <= schemas.LATEST
            or not parts[1].isdigit() or int(parts[1]) > schemas.MAX_ID):
        raise InvalidInput("cursor: not a cursor this API gave (take `next_cursor` from the last page)",
                           "invalid_cursor")
    return at, int(parts[1])


@router.get("/{lead_id}/events", response_model=schemas.EventPage)
def lead_events(
    lead_id: LeadId,
    app: AppDep,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.EventPage:
    """The lead's timeline: what it did, newest first, with the points each event earned."""
    rows = lead_service.timeline(app.read_uow(), lead_id, before=event_cursor(cursor), limit=limit)
    items = [
        schemas.EventOut(id=event_id, message_id=e.message_id, type=e.type, name=e.name, timestamp=e.timestamp,
                         points=e.points, properties=e.properties, traits=e.traits, touch=e.touch)
        for event_id, e in rows
    ]
    last = rows[-1] if len(rows) == limit else None
    return schemas.EventPage(
        items=items, next_cursor=None if last is None else schemas.encode_cursor(last[1].timestamp.isoformat(), last[0])
    )


@router.post("/{lead_id}/move", response_model=schemas.Moved)
def move_lead(lead_id: LeadId, body: schemas.MoveIn, app: AppDep, key: Authorized) -> schemas.Moved:
    """Move a lead to another stage, as the playbook allows (hand-back and disqualify need a reason)."""
    change = lead_service.move_lead(app.uow(), app.playbook, lead_id, body.to, by=f"api:{key.name}",
                                    reason=body.reason, now=utc_now())
    return schemas.Moved(lead_id=change.lead.id, from_stage=change.from_stage, to_stage=change.to_stage, at=change.at)

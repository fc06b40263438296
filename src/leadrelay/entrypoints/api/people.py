"""/api/v1/people/{email}: a person's data, for admins — everything held about them (export),
and erasure at their request (the reports' counts stay; see docs/personal-data.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api.deps import AdminOnly, AppDep, admin_only
from leadrelay.services import personal_data

router = APIRouter(prefix="/api/v1/people", tags=["people"], dependencies=[Depends(admin_only)])
Email = Annotated[str, Path(min_length=3, max_length=320, pattern=r"^[^\x00-\x1f/]+@[^\x00-\x1f/]+$",
                            description="The person's email (any of their leads' addresses).")]


class ErasureOut(BaseModel):
    email: str = Field(description="The address that was asked for (it is held nowhere any more).")
    lead_ids: list[int] = Field(description="The leads erased: the person's, and those merged with it. "
                                            "Each stays, anonymised, so the reports' counts do not change.")
    removed: dict[str, int] = Field(description="Rows removed or stripped of personal data, by table.")
    erased_at: datetime


class ExportOut(BaseModel):
    email: str
    exported_at: str
    exported_by: str
    lead_ids: list[int]
    emails: list[str] = Field(description="Every address of the person's leads.")
    tables: dict[str, list[dict[str, Any]]] = Field(description="Every row held about the person, by table.")


@router.get("/{email}/export", response_model=ExportOut, summary="Export everything held about a person")
async def export_person(email: Email, app: AppDep) -> dict[str, Any]:
    """Everything LeadRelay holds about the person with this email, as JSON (a subject access
    request): their leads, events, identities, stage history, deals, touches, emails, outbox
    items and the rest, table by table. 404 when no lead has this email."""
    return await run_in_threadpool(personal_data.export_person, app.read_uow(), email, utc_now())


@router.delete("/{email}", response_model=ErasureOut, summary="Erase a person")
async def erase_person(email: Email, app: AppDep, caller: AdminOnly) -> dict[str, Any]:
    """Erase the person with this email: their events, identities, notes, tasks, outbox items,
    sent-email addresses, suppression entry and refused messages go; their lead stays anonymised
    (no email, name, company or fields) so that the funnel and every report count the same.
    Recorded in the audit log. 404 when no lead has this email (or it was erased already)."""
    done = await run_in_threadpool(personal_data.erase_person, app.uow(), email, actor=f"api:{caller.name}",
                                   now=utc_now())
    return {"email": done.email, "lead_ids": done.lead_ids, "removed": done.removed, "erased_at": done.at}

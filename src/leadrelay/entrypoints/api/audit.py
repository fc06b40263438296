"""/api/v1/audit: who did what and when, for admins — stage moves and deal actions by people and
keys, assignments, playbook changes, user and key changes, erasures. Read-only: nobody can change
or delete an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from leadrelay.adapters.audit import AuditFilter
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, admin_only
from leadrelay.services import audit as audit_service

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], dependencies=[Depends(admin_only)])


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="Who: a user's email, `api:KEY NAME` or `api:EMAIL` (the API), `cli`.")
    action: str = Field(description="What, e.g. `deal.move`, `lead.move`, `user.update`, `api_key.create`.")
    subject: str = Field(description="To what: `deal:12`, `lead:34`, `user:EMAIL`, `api_key:5`, `playbook:NAME`.")
    detail: dict[str, Any] | None = None


class AuditPage(schemas.Page):
    items: list[AuditEntryOut]


def audit_filter(
    actor: Annotated[schemas.Text | None, Query(description="Only what this actor did.")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$",
                                        description="Only this action; ending in `.`, a family (`deal.`).")] = None,
    subject: Annotated[str | None, Query(max_length=500, pattern=r"^[^\x00]*$",
                                         description="Only what was done to this subject (`deal:12`).")] = None,
    since: Annotated[schemas.Moment | None, Query(alias="from", description="At or after (ISO 8601).")] = None,
    until: Annotated[schemas.Moment | None, Query(alias="to", description="Before (ISO 8601).")] = None,
) -> AuditFilter:
    return AuditFilter(actor=actor, action=action, subject=subject, since=since, until=until)


@router.get("", response_model=AuditPage)
def audit_log(
    app: AppDep, filters: Annotated[AuditFilter, Depends(audit_filter)],
    limit: Annotated[schemas.Limit, Query(description="Entries per page.")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> AuditPage:
    """The audit log, newest first, a page at a time."""
    found = audit_service.entries(app.read_uow(), filters, before=schemas.cursor_id(cursor), limit=limit)
    return AuditPage(
        items=[AuditEntryOut(id=e.id, at=e.at, actor=e.actor, action=e.action, subject=e.subject, detail=e.detail)
               for e in found],
        next_cursor=schemas.encode_cursor(found[-1].id) if len(found) == limit else None,
    )

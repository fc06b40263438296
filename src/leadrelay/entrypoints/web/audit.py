"""The audit log page, for admins: who did what and when, newest first, with filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from leadrelay.adapters.audit import AuditFilter
from leadrelay.adapters.users import Session
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.audit import audit_filter
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.session import page
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import audit as audit_service

router = APIRouter(prefix="/audit", include_in_schema=False)
AuditViewer = Annotated[Session, Depends(page("audit"))]
PAGE = 100


@router.get("", response_class=HTMLResponse)
def audit_page(request: Request, app: AppDep, session: AuditViewer,
               filters: Annotated[AuditFilter, Depends(audit_filter)],
               before: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    entries = audit_service.entries(app.read_uow(), filters, before=schemas.cursor_id(before), limit=PAGE)
    more = schemas.encode_cursor(entries[-1].id) if len(entries) == PAGE else None
    query = {name: value for name, value in request.query_params.items() if name != "before" and value}
    return render(request, "audit.html", session, active="audit", entries=entries, more=more, filters=filters,
                  query=query)

"""The playbook page: the agreement in force, readable by both teams (stages and moves, MQL
rule, scoring rules, SLA terms, reasons); its version history with diffs; and checking and
previewing a candidate before an admin applies it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadrelay.adapters.playbook_file import PlaybookError
from leadrelay.adapters.users import Session
from leadrelay.config import PLAYBOOK_FILE
from leadrelay.domain.access import Role
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import InvalidInput, PermissionDenied
from leadrelay.entrypoints.api.deps import AppDep, writer
from leadrelay.entrypoints.model_cli import comparison_rows
from leadrelay.entrypoints.web.session import Acting, page
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import playbook as playbook_service
from leadrelay.services.prediction import attach
from leadrelay.services.simulation import simulate
from leadrelay.services.tracking import BatchWriter

router = APIRouter(prefix="/playbook", include_in_schema=False)
PlaybookViewer = Annotated[Session, Depends(page("playbook"))]
MAX_TEXT = 500_000
PREVIEW_WEEKS = 4  # the backtest shown with a preview replays the leads created in these weeks
PREVIEW_LEADS = 2000  # (at most this many, the newest), so the page answers in seconds


@router.get("", response_class=HTMLResponse)
def playbook_page(request: Request, app: AppDep, session: PlaybookViewer,
                  before: Annotated[int | None, Query(ge=1, le=2**53)] = None,
                  applied: Annotated[int | None, Query(ge=0, le=1)] = None) -> HTMLResponse:
    versions = playbook_service.versions(app.read_uow(), before=before, limit=20)
    return render(request, "playbook.html", session, active="playbook", versions=versions, applied=applied,
                  more=versions[-1].id if len(versions) == 20 else None)


@router.get("/versions/{version_id}", response_class=HTMLResponse)
def version_page(request: Request, app: AppDep, session: PlaybookViewer,
                 version_id: Annotated[int, PathParam(ge=1, le=2**53)]) -> HTMLResponse:
    change = playbook_service.version_change(app.read_uow(), version_id)
    return render(request, "playbook_version.html", session, active="playbook", change=change)


@router.post("/preview", response_class=HTMLResponse)
def preview(request: Request, app: AppDep, session: Acting,
            text: Annotated[str, Form(max_length=MAX_TEXT)]) -> HTMLResponse:
    """Check a candidate and show what it would change; nothing is changed."""
    if session.user.role is Role.SALES_REP:
        raise PermissionDenied("a sales rep reads the playbook; managers, marketing and admins preview changes")
    result = playbook_service.preview(app.playbook, text)
    backtest = None
    if result.candidate is not None:  # replayed in memory on recent history: nothing is written
        now = utc_now()
        backtest = simulate(app.engine, app.playbook, replace(result.candidate, win_model=app.playbook.win_model),
                            since=now - timedelta(weeks=PREVIEW_WEEKS), until=now, limit=PREVIEW_LEADS,
                            changes_shown=20, workers=1)  # never fork inside the web server
    return render(request, "playbook_preview.html", session, active="playbook", result=result, text=text,
                  may_apply=session.user.role is Role.ADMIN, backtest=backtest, weeks=PREVIEW_WEEKS, max_leads=PREVIEW_LEADS,
                  rows=[(label, getter(backtest.current), getter(backtest.candidate))
                        for label, getter in comparison_rows()] if backtest else [])


@router.post("/apply")
def apply(app: AppDep, session: Acting, batch_writer: Annotated[BatchWriter, Depends(writer)],
          text: Annotated[str, Form(max_length=MAX_TEXT)], note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Put a checked candidate in force (admins): the playbook file is rewritten and the version
    recorded with who applied it; this server uses it at once."""
    if session.user.role is not Role.ADMIN:
        raise PermissionDenied("only an admin applies a playbook")
    path = app.playbook_path or app.settings.playbook or Path.cwd() / PLAYBOOK_FILE
    try:
        candidate = playbook_service.apply(app.uow(), text, path, by=session.user.email, note=note.strip() or None,
                                           now=utc_now())
    except PlaybookError as error:
        raise InvalidInput(f"the candidate has {len(error.problems)} problem(s): {error}", "invalid_playbook") from None
    candidate = attach(candidate, app.engine)  # the model in use, for rules that read p_win
    app.playbook = batch_writer.playbook = candidate
    app.playbook_path = path
    return RedirectResponse("/playbook?applied=1", status_code=303)

"""The admin page for users and teams: who may log in, with which role, in which team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadrelay.adapters.users import Session
from leadrelay.domain.access import Role, may_open
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import DomainError, PermissionDenied
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.session import Acting, page
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import users as user_service

router = APIRouter(prefix="/users", include_in_schema=False)
Admin = Annotated[Session, Depends(page("users"))]
Email = Annotated[str, Form(max_length=320)]


def _admin(session: Session) -> None:
    if not may_open(session.user, "users"):
        raise PermissionDenied("only an admin manages users")


def _page(request: Request, app: AppDep, session: Session, *, error: str | None = None, done: str | None = None,
          status: int = 200) -> HTMLResponse:
    return render(request, "users.html", session, active="users", users=user_service.users(app.read_uow()),
                  roles=list(Role), teams=app.playbook.routing.teams, error=error, done=done, status=status)


@router.get("", response_class=HTMLResponse)
def users_page(request: Request, app: AppDep, session: Admin,
               done: Annotated[str | None, Query(max_length=400)] = None) -> HTMLResponse:
    return _page(request, app, session, done=done)


@router.post("")
def create(request: Request, app: AppDep, session: Acting, email: Email, role: Annotated[str, Form(max_length=32)],
           password: Annotated[str, Form(max_length=1000)], name: Annotated[str, Form(max_length=200)] = "",
           team: Annotated[str, Form(max_length=64)] = "") -> Response:
    _admin(session)
    try:
        user = user_service.create_user(app.uow(), app.playbook, email=email, role=role, password=password,
                                        name=name, team=team, now=utc_now(), by=session.user.email)
    except DomainError as error:  # shown on the form, which keeps what was typed
        return _page(request, app, session, error=error.message, status=422)
    return RedirectResponse(f"/users?done=Created {user.email} ({user.role.label})", status_code=303)


@router.post("/update")
def change(request: Request, app: AppDep, session: Acting, email: Email, role: Annotated[str, Form(max_length=32)],
           team: Annotated[str, Form(max_length=64)] = "", active: Annotated[str, Form(max_length=3)] = "",
           password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    _admin(session)
    if email.strip().lower() == session.user.email and (role != Role.ADMIN.value or not active):
        return _page(request, app, session, error="You cannot take your own admin role or access away.", status=422)
    try:
        user = user_service.update_user(app.uow(), app.playbook, email, utc_now(), role=role, team=team,
                                        password=password or None, disabled=not active, by=session.user.email)
    except DomainError as error:
        return _page(request, app, session, error=error.message, status=422)
    return RedirectResponse(f"/users?done=Saved {user.email}", status_code=303)

"""Who is looking at a page: the login session behind the cookie, the role's pages, CSRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from leadrelay.adapters.users import Session
from leadrelay.bootstrap import App
from leadrelay.domain.access import may_open
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import PermissionDenied, Unauthenticated
from leadrelay.entrypoints.api.deps import application, key_from_header
from leadrelay.services import users as user_service
from leadrelay.services.api_keys import authenticate

COOKIE = "leadrelay_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class LoginRequired(Unauthenticated):
    """No live session: a page answers with a redirect to the login form, a script's call 401."""

    def __init__(self) -> None:
        super().__init__("log in first: the session has ended or there is none")


def policy(app: App) -> user_service.SessionPolicy:
    settings = app.settings
    return user_service.SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes), lifetime=timedelta(hours=settings.session_max_hours),
        max_failures=settings.login_max_failures, window=timedelta(minutes=settings.login_window_minutes),
    )


def current_session(request: Request, app: Annotated[App, Depends(application)]) -> Session:
    found = user_service.session(app.uow(), request.cookies.get(COOKIE), now=utc_now(), policy=policy(app))
    if found is None:
        key = key_from_header(request.headers.get("authorization"))
        if key is not None and valid_key(app, key):
            raise PermissionDenied("pages are for people who log in: API keys open the API (/api/v1, /v1) only")
        raise LoginRequired()
    return found


def valid_key(app: App, key: str) -> bool:
    try:
        authenticate(app.read_uow(), key, scope="write")
    except Unauthenticated:
        return False
    except PermissionDenied:  # a user key: valid, but not a write key
        return True
    return True


async def checked_session(request: Request, session: Annotated[Session, Depends(current_session)]) -> Session:
    """The session of a request that changes something: it must carry the session's CSRF token
    (the form's hidden field, or the X-CSRF-Token header of a script's call)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)  # type: ignore[assignment]
    user_service.check_csrf(session, sent if isinstance(sent, str) else None)
    return session


def page(name: str):  # type: ignore[no-untyped-def]
    """A dependency: the session, if the user's role opens this page (else 403)."""

    def allowed(session: Annotated[Session, Depends(current_session)]) -> Session:
        if not may_open(session.user, name):
            raise PermissionDenied(f"a {session.user.role.label} cannot open the {name} page")
        return session

    return allowed


Viewer = Annotated[Session, Depends(current_session)]
Acting = Annotated[Session, Depends(checked_session)]

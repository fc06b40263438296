"""Logging in and out, and the home page (each role's first page)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from leadrelay.domain.access import PAGES, Role
from leadrelay.domain.clock import utc_now
from leadrelay.domain.errors import TooManyAttempts, Unauthenticated
from leadrelay.entrypoints.api.deps import AppDep
from leadrelay.entrypoints.web.session import COOKIE, Acting, Viewer, policy
from leadrelay.entrypoints.web.templating import render
from leadrelay.services import users as user_service

router = APIRouter(include_in_schema=False)
LOGIN_CSRF = "leadrelay_login"  # the login form has no session yet: its CSRF token is a cookie


def _next(raw: str | None) -> str:
    """Only a path on this site (never '//elsewhere' or a full URL): no open redirect."""
    if raw and raw.startswith("/") and not raw.startswith(("//", "/\\")):
        return raw
    return "/"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_form(request: Request, *, next_page: str, error: str | None = None, email: str = "",
                status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status=status, next_page=next_page, error=error, email=email,
                      login_token=token)
    response.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request),
                        max_age=3600, path="/login")
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, next_page=_next(next))


@router.post("/login")
def log_in(
    request: Request, app: AppDep, email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)], csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, csrf_token):
        return _login_form(request, next_page=_next(next), email=email, status=403,
                           error="The form expired. Please try again.")
    address = request.client.host if request.client else "unknown"
    try:
        token, session = user_service.log_in(app.uow(), email, password, address=address, now=utc_now(),
                                             policy=policy(app))
    except TooManyAttempts as error:
        return _login_form(request, next_page=_next(next), email=email, status=429, error=error.message.capitalize())
    except Unauthenticated:
        return _login_form(request, next_page=_next(next), email=email, status=401,
                           error="Wrong email or password.")
    response = RedirectResponse(_next(next) if _next(next) != "/" else _home(session.user.role), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=_secure(request),
                        max_age=int(policy(app).lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


@router.post("/logout")
def log_out(request: Request, app: AppDep, _: Acting) -> Response:
    user_service.log_out(app.uow(), request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _home(role: Role) -> str:
    return f"/{PAGES[role][0]}"


@router.get("/")
def home(session: Viewer) -> Response:
    return RedirectResponse(_home(session.user.role), status_code=303)

"""Every error the API answers, in one place: JSON `{"code", "message"}` with a stable code,
never a stack trace. Domain errors carry no HTTP status; this table gives them one."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from starlette.exceptions import HTTPException

from leadrelay.domain import errors as domain

log = logging.getLogger("leadrelay.api")

STATUS: dict[type[domain.DomainError], int] = {
    domain.NotFound: 404,
    domain.Unauthenticated: 401,
    domain.PermissionDenied: 403,
    domain.InvalidInput: 400,
    domain.Overloaded: 429,
    domain.TooManyAttempts: 429,
    domain.MoveNotAllowed: 409,
    domain.MergeNotAllowed: 409,
    domain.DealClosed: 409,
    domain.InvalidTouch: 422,
    domain.ReasonRequired: 422,
    domain.UnknownStage: 422,
    domain.InvalidField: 422,
}
RETRY_AFTER_SECONDS = "1"
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 429: "overloaded"}


def error_response(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer, Basic realm="leadrelay"'
    if status in (429, 503):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status, headers=headers)


def _status(error: domain.DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 400


# the web app's error page: (request, status, code, message) -> a page, or None for JSON
PageRenderer = Callable[[Request, int, str, str], Response | None]


def install(app: FastAPI, page: PageRenderer | None = None) -> None:
    """Map every error to an answer; `page` renders it as a page for a browser on a web page."""

    def answer(request: Request, status: int, code: str, message: str, **extra: object) -> Response:
        shown = page(request, status, code, message) if page is not None else None
        return shown if shown is not None else error_response(status, code, message, **extra)

    @app.exception_handler(domain.DomainError)
    async def _domain(request: Request, error: domain.DomainError) -> Response:
        response = answer(request, _status(error), error.code, error.message)
        if isinstance(retry_after := getattr(error, "retry_after", None), int):  # a rate limit says how long
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> Response:
        problems = [
            {"where": ".".join(str(part) for part in problem["loc"]), "message": problem["msg"]}
            for problem in error.errors()
        ]
        summary = "; ".join(f"{p['where']}: {p['message']}" for p in problems)
        return answer(request, 422, "invalid_request", summary or "the request is not valid", problems=problems)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        return answer(request, error.status_code, HTTP_CODES.get(error.status_code, "http_error"), str(error.detail))

    @app.exception_handler(OperationalError)
    async def _store_down(request: Request, error: OperationalError) -> Response:
        log.error("the database cannot be used: %s", str(error.orig).splitlines()[0] if error.orig else error)
        return answer(request, 503, "store_unavailable", "the database cannot be reached just now: try again")

    @app.exception_handler(SQLAlchemyError)
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(request, 500, "internal_error", "something went wrong on our side; it was logged")

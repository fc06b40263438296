"""The web app: server-rendered pages for sales (the board), marketing (MQL queue, hand-backs,
nurture, sources), both teams' dashboards and the playbook, and admins (users). Every asset is
served from here: it works offline and behind a firewall."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadrelay.entrypoints.web import (
    auth,
    board,
    dashboard,
    leads,
    marketing,
    playbook,
    users,
)
from leadrelay.entrypoints.web.templating import HERE, SECURITY_HEADERS, render

API_PREFIXES = ("/api/", "/v1/", "/docs", "/redoc", "/openapi.json")


def wants_page(request: Request) -> bool:
    """A browser navigating to a page (not the API, nor a script asking for JSON)."""
    return (not request.url.path.startswith(API_PREFIXES)
            and "text/html" in request.headers.get("accept", ""))


def error_page(request: Request, status: int, code: str, message: str) -> Response | None:
    """The error as a page, for a browser on a web page; None lets the API answer JSON."""
    if not wants_page(request):
        return None
    if status == 401 and request.method == "GET":  # no session: log in, then come back
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return render(request, "error.html", None, status=status, status_code=status, code=code, message=message)


class SecurityHeaders:
    """Pages and their assets carry a strict Content-Security-Policy and frame denial (the API's
    own documentation pages, which run inline script, are left out)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/docs", "/redoc")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                headers.extend((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                               if name.lower().encode() not in present)
            await send(message)

        await self.app(scope, receive, with_headers)


def install(api: FastAPI) -> None:
    api.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (auth, board, dashboard, leads, marketing, playbook, users):
        api.include_router(module.router)
    from leadrelay.entrypoints.web import audit  # the audit log page (admins)

    api.include_router(audit.router)
    api.add_middleware(SecurityHeaders)

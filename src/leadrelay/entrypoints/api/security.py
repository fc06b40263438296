"""Protections around the whole server:

- the API's documentation (/docs, /redoc, /openapi.json) opens only with a key or a login
  session, like every route that is not public;
- every response carries the security headers — the documentation pages too, whose own inline
  script is allowed by its hash, never by `'unsafe-inline'`.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadrelay.domain.errors import DomainError
from leadrelay.entrypoints.api.deps import application, identify
from leadrelay.entrypoints.api.errors import _status, error_response

DOCS = ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect")
DOC_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_policy(body: bytes) -> str:
    """The pages' policy, with this page's inline scripts allowed by their SHA-256 (and workers
    from blob: URLs, which the documentation viewer starts)."""
    from leadrelay.entrypoints.web.templating import CSP

    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
                      for script in INLINE_SCRIPT.findall(body))
    return CSP.replace("script-src 'self'", f"script-src 'self' {hashes}".rstrip()) + "; worker-src 'self' blob:"


class DocsGuard:
    """The documentation needs a key or a session; its pages get headers with their scripts' hashes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in DOCS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            await run_in_threadpool(identify, request, application(request))
        except DomainError as error:
            status = _status(error)
            response = error_response(status, error.code, error.message)
            if status == 401 and scope["path"] in DOC_PAGES and "text/html" in request.headers.get("accept", ""):
                response = RedirectResponse(f"/login?next={scope['path']}", status_code=303)  # a browser logs in
            await self._with_headers(response, scope, receive, send)
            return
        if scope["path"] in DOC_PAGES:
            await self._page(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _with_headers(self, response, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[no-untyped-def]
        from leadrelay.entrypoints.web.templating import SECURITY_HEADERS

        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        await response(scope, receive, send)

    async def _page(self, scope: Scope, receive: Receive, send: Send) -> None:
        from leadrelay.entrypoints.web.templating import SECURITY_HEADERS

        start: Message | None = None
        body = bytearray()

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                assert start is not None
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-security-policy"]
                present = {k.lower() for k, _ in headers}
                policy = {**SECURITY_HEADERS, "Content-Security-Policy": docs_policy(bytes(body))}
                headers += [(k.lower().encode(), v.encode()) for k, v in policy.items()
                            if k.lower().encode() not in present]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": bytes(body)})
                return
            await send(message)

        await self.app(scope, receive, collect)


def install(api: FastAPI) -> None:
    api.add_middleware(DocsGuard)

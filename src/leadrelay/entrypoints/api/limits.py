"""A limit on the size of every request body (the REST API, the web app's forms; the tracking API
keeps its own, smaller one): past it the answer is 413 `too_large`, and the rest is not read."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadrelay.entrypoints.api.errors import error_response

MAX_BODY_BYTES = 2 * 1024 * 1024  # a playbook (1 MB at most) in a JSON body fits with room to spare


def _too_large(size: int | None = None) -> str:
    told = f" ({size:,} bytes)" if size is not None else ""
    return f"request body larger than {MAX_BODY_BYTES // (1024 * 1024)} MB{told}"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await error_response(413, "too_large", _too_large(int(declared)))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, _too_large())
            return message

        await self.app(scope, limited, send)


def install(app: FastAPI) -> None:
    app.add_middleware(BodyLimit)

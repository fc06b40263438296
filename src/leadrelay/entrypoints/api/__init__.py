"""The HTTP server: the Segment-compatible tracking API (/v1/...), the REST API (/api/v1/...),
and the API's documentation (/docs, /redoc, /openapi.json), all served without any CDN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from leadrelay import __version__
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints import web
from leadrelay.entrypoints.api import (
    accounts,
    audit,
    content,
    deals,
    errors,
    health,
    leads,
    limits,
    models,
    nurture,
    people,
    playbook,
    rejections,
    reports,
    reps,
    security,
    tracking,
    webhooks,
)
from leadrelay.entrypoints.playbook_follow import PlaybookFollower
from leadrelay.entrypoints.worker import Worker
from leadrelay.services import playbook as playbook_service
from leadrelay.services.tracking import BatchWriter


def create_app(leadrelay: App) -> FastAPI:
    writer = BatchWriter(leadrelay.uow, leadrelay.playbook, max_pending=leadrelay.settings.max_pending_batches)

    worker = Worker(leadrelay) if leadrelay.settings.worker_in_server else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        where = f"file {leadrelay.playbook_path.name}" if leadrelay.playbook_path else "built-in playbook"
        playbook_service.record(leadrelay.uow(), leadrelay.playbook, by=where, now=utc_now())
        writer.start()
        if worker is not None:
            worker.start()
        # a playbook applied in another process reaches this one within a few seconds
        follower = PlaybookFollower(leadrelay, on_change=lambda new: setattr(writer, "playbook", new))
        follower.start()
        try:
            yield
        finally:
            follower.stop()
            writer.stop()
            if worker is not None:
                worker.stop()

    api = FastAPIOffline(
        title="LeadRelay",
        version=__version__,
        description=(
            "The marketing-to-sales hand-off. **Tracking** (`/v1/...`) takes Segment-format calls with a write key "
            "(HTTP Basic user name, or `writeKey` in the body). The **REST API** (`/api/v1/...`) needs an admin key, "
            "or a key bound to a user (`leadrelay apikey create --user EMAIL`: that user's role and teams), as "
            "`Authorization: Bearer KEY`; or a login session (changes also send `X-CSRF-Token`). Every error is JSON: "
            '`{"code": "...", "message": "..."}`.'
        ),
        lifespan=lifespan,
    )
    api.state.leadrelay = leadrelay
    api.state.writer = writer
    errors.install(api, page=web.error_page)
    routers = (tracking, leads, deals, reps, reports, content, accounts, webhooks, playbook, rejections, nurture,
               audit, people, models, health)
    for module in routers:
        api.include_router(module.router)
    api.include_router(nurture.links)  # the public links in nurture emails (open, click, unsubscribe)
    security.install(api)  # security headers on every answer; the API docs need a key or a session
    limits.install(api)  # request bodies past the size limit are refused before they are read
    web.install(api)
    return api

"""The HTTP server: the Segment-compatible tracking API (/v1/...), the REST API (/api/v1/...),
and the API's documentation (/docs, /redoc, /openapi.json), all served without any CDN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from leadrelay import __version__
from leadrelay.bootstrap import App
from leadrelay.entrypoints.api import (
    accounts, content, deals, errors, leads, nurture, playbook, rejections, reports, reps, tracking, webhooks,
)
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints import web
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
        try:
            yield
        finally:
            writer.stop()
            if worker is not None:
                worker.stop()

    api = FastAPIOffline(
        title="LeadRelay",
        version=__version__,
        description=(
            "The marketing-to-sales hand-off. **Tracking** (`/v1/...`) takes Segment-format calls with a write key "
            "(HTTP Basic user name, or `writeKey` in the body). The **REST API** (`/api/v1/...`) needs an admin key: "
            "`Authorization: Bearer KEY`. Create keys with `leadrelay apikey create`. Every error is JSON: "
            '`{"code": "...", "message": "..."}`.'
        ),
        lifespan=lifespan,
    )
    api.state.leadrelay = leadrelay
    api.state.writer = writer
    errors.install(api, page=web.error_page)
    for module in (tracking, leads, deals, reps, reports, content, accounts, webhooks, playbook, rejections, nurture):
        api.include_router(module.router)
    api.include_router(nurture.links)  # the public links in nurture emails (open, click, unsubscribe)
    web.install(api)
    return api

"""Health and metrics for load balancers and monitoring.

- `GET /healthz`: the process is alive and answering (no database work). Public.
- `GET /readyz`: the database answers and its schema is at the newest migration this version of
  LeadRelay ships (503 otherwise, saying why). Public: a load balancer sends traffic only to a
  process that is ready.
- `GET /metrics`: Prometheus text format; needs an admin key (`Authorization: Bearer KEY`).
  Figures named `leadrelay_store_*` are read from the database at each scrape, so every process
  gives the same values (scrape one process, or take `max` over them); `leadrelay_process_*` and
  the standard `process_*` figures are this process's own (sum them over processes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from leadrelay import __version__
from leadrelay.adapters.health import readiness, store_figures
from leadrelay.bootstrap import App
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api.deps import AppDep, Authorized

router = APIRouter(tags=["health"])
STARTED = time.time()


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Always 200 while the process answers HTTP; touches no database."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Ready for traffic: database reachable and migrated",
            responses={503: {"description": "Not ready: the database cannot be reached or is not migrated"}})
def readyz(app: AppDep) -> JSONResponse:
    """200 when the database answers and is at the newest schema this version expects; 503 otherwise."""
    state = readiness(app.engine)
    body = {"status": "ready" if state.ready else "not_ready", "database_revision": list(state.database),
            "expected_revision": list(state.code)}
    if not state.ready:
        body.update(code="not_ready", message=state.reason)
    return JSONResponse(body, status_code=200 if state.ready else 503, headers={"Cache-Control": "no-store"})


class _LeadRelayCollector(Collector):
    """Reads the store's figures at each scrape; the process's own counters from its writer."""

    def __init__(self, app: App, request: Request) -> None:
        self.app, self.request = app, request

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        now = utc_now()
        yield InfoMetricFamily("leadrelay_build", "LeadRelay version and the playbook in force in this process",
                               value={"version": __version__, "playbook_version": str(self.app.playbook.version),
                                      "database": self.app.engine.dialect.name})
        with self.app.read_uow() as uow:
            figures = store_figures(uow.connection, now)

        def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_text, value=value)

        yield CounterMetricFamily("leadrelay_store_events_stored", "Events stored, all processes (the highest event "
                                  "id: use rate(); a rolled-back batch leaves a gap)", value=figures.events_last_id)
        yield gauge("leadrelay_store_leads", "Leads (not merged away)", figures.leads)
        yield CounterMetricFamily("leadrelay_store_hand_offs", "Hand-offs to sales (deals opened), all processes",
                                  value=figures.hand_offs)
        yield gauge("leadrelay_store_open_deals", "Deals open on the sales board", figures.open_deals)
        items = GaugeMetricFamily("leadrelay_store_outbox_items", "Outbox items not delivered, by kind and status "
                                  "(pending: waiting or being retried; dead: gave up)", labels=["kind", "status"])
        for kind in ("webhook", "email"):
            for status in ("pending", "dead"):
                items.add_metric([kind, status], figures.outbox.get((kind, status), 0))
        yield items
        yield gauge("leadrelay_store_outbox_due", "Outbox items due for delivery now (the backlog)", figures.outbox_due)
        yield gauge("leadrelay_store_outbox_oldest_due_seconds", "How long the oldest due outbox item has waited",
                    figures.outbox_oldest_due_seconds)
        yield gauge("leadrelay_store_clocks_overdue", "Running SLA clocks past their due time that the worker has not "
                    "yet breached", figures.clocks_overdue)
        yield gauge("leadrelay_store_clock_lag_seconds", "How far past its due time the most overdue running SLA clock"
                    " is (0 when the worker keeps up)", figures.clock_lag_seconds)
        yield gauge("leadrelay_store_warnings_overdue", "Running SLA clocks past their warning time, not yet warned",
                    figures.warnings_overdue)
        writer = getattr(self.request.app.state, "writer", None)
        if writer is not None:
            yield CounterMetricFamily("leadrelay_process_events_ingested", "Events stored through this process's "
                                      "tracking API", value=writer.stored_events)
            yield CounterMetricFamily("leadrelay_process_hand_offs", "Hand-offs made by this process's tracking API",
                                      value=writer.deals_opened)
            yield gauge("leadrelay_process_batches_waiting", "Tracking batches waiting for this process's writer",
                        writer.waiting())
        yield gauge("leadrelay_process_start_time_seconds", "When this process started (Unix time)", STARTED)


def _render(app: App, request: Request) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(_LeadRelayCollector(app, request))
    return generate_latest(registry)


@router.get("/metrics", summary="Prometheus metrics (admin key)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
async def metrics(app: AppDep, request: Request, _key: Authorized) -> Response:
    """Events stored, hand-offs, outbox backlog, SLA clock lag (from the database: the same in every process),
    and this process's own counters."""
    body = await run_in_threadpool(_render, app, request)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

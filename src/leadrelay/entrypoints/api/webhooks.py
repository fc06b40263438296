"""/api/v1/webhooks and /api/v1/outbox: webhook subscriptions with their delivery log, and
what waits to be delivered (dead items included, to retry)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from leadrelay.adapters.outbox import Webhook
from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, authorized
from leadrelay.services import webhooks as service

router = APIRouter(prefix="/api/v1", tags=["webhooks"], dependencies=[Depends(authorized)])
Id = Annotated[int, Path(ge=1, le=schemas.MAX_ID)]


def _out(webhook: Webhook) -> schemas.WebhookOut:
    return schemas.WebhookOut(id=webhook.id, name=webhook.name, url=webhook.url, events=webhook.events,
                              active=webhook.active, created_at=webhook.created_at)


@router.get("/webhooks", response_model=list[schemas.WebhookOut])
def list_webhooks(app: AppDep) -> list[schemas.WebhookOut]:
    """Every subscription (secrets are never shown again)."""
    return [_out(webhook) for webhook in service.find(app.read_uow())]


@router.post("/webhooks", response_model=schemas.WebhookCreated, status_code=201)
def create_webhook(body: schemas.WebhookIn, app: AppDep, response: Response) -> schemas.WebhookCreated:
    """Subscribe a URL to events. Each delivery is a POST signed with the secret answered here
    (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` = HMAC-SHA256 over
    id, timestamp and body), with an `Idempotency-Key` header receivers use to drop repeats."""
    webhook = service.create(app.uow(), name=body.name, url=body.url, events=body.events, now=utc_now(),
                             policy=service.UrlPolicy.of(app.settings))
    response.headers["Location"] = f"/api/v1/webhooks/{webhook.id}"
    return schemas.WebhookCreated(**_out(webhook).model_dump(), secret=webhook.secret)


@router.get("/webhooks/{webhook_id}", response_model=schemas.WebhookOut)
def get_webhook(webhook_id: Id, app: AppDep) -> schemas.WebhookOut:
    return _out(service.get(app.read_uow(), webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=schemas.WebhookOut)
def change_webhook(webhook_id: Id, body: schemas.WebhookPatch, app: AppDep) -> schemas.WebhookOut:
    """Change a subscription; `active: false` stops its deliveries (what is waiting goes dead)."""
    values = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return _out(service.change(app.uow(), webhook_id, values, policy=service.UrlPolicy.of(app.settings)))


@router.get("/webhooks/{webhook_id}/deliveries", response_model=schemas.DeliveryPage)
def webhook_deliveries(
    webhook_id: Id, app: AppDep, limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.DeliveryPage:
    """The delivery log: every attempt, newest first, with the receiver's answer."""
    rows = service.deliveries(app.read_uow(), webhook_id, before=schemas.cursor_id(cursor), limit=limit)
    return schemas.DeliveryPage(
        items=[schemas.DeliveryOut(**{k: row[k] for k in schemas.DeliveryOut.model_fields}) for row in rows],
        next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
    )


@router.get("/outbox", response_model=schemas.OutboxPage)
def list_outbox(
    app: AppDep,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$",
                                        description="pending, delivered or dead.")] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.OutboxPage:
    """Webhooks and emails written by changes, newest first: waiting, delivered, or dead."""
    items = service.outbox(app.read_uow(), status=status, before=schemas.cursor_id(cursor), limit=limit)
    return schemas.OutboxPage(
        items=[schemas.OutboxItem(**{k: getattr(item, k) for k in schemas.OutboxItem.model_fields}) for item in items],
        next_cursor=schemas.encode_cursor(items[-1].id) if len(items) == limit else None,
    )


@router.post("/outbox/{item_id}/retry", response_model=schemas.OutboxItem)
def retry_item(item_id: Id, app: AppDep) -> schemas.OutboxItem:
    """Give a dead item another round of attempts, starting now."""
    item = service.retry(app.uow(), item_id, utc_now())
    return schemas.OutboxItem(**{k: getattr(item, k) for k in schemas.OutboxItem.model_fields})

"""/api/v1/content: the content items marketing makes, and the shares reps log when they send one
to a lead (what the content report's "used by sales" counts)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from leadrelay.domain.clock import utc_now
from leadrelay.entrypoints.api import schemas
from leadrelay.entrypoints.api.deps import AppDep, Authorized, authorized
from leadrelay.services import content as content_service

router = APIRouter(prefix="/api/v1/content", tags=["content"], dependencies=[Depends(authorized)])

Kind = Literal["asset", "page", "email", "webinar"]
ItemId = Annotated[int, Path(ge=1, le=schemas.MAX_ID, description="The content item's id.")]
Key = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00]+$")]
Title = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[^\x00]+$")]
Url = Annotated[str, Field(max_length=2000, pattern=r"^[^\s\x00]*$")]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]


class ItemIn(BaseModel):
    kind: Kind = Field(description="asset (downloads), page (visits), email (opens, clicks) or webinar (attendance).")
    key: Key = Field(description="How events name it: the `asset` of a download, the `path` of a page, the `campaign` "
                                 "of an email, the `webinar` of a webinar attended.")
    title: Title | None = Field(None, description="What people call it (default: the key).")
    url: Url | None = None


class ItemPatch(BaseModel):
    title: Title | None = None
    url: Url | None = None
    archived: bool | None = Field(None, description="An archived item is left out of the content report.")


class ItemOut(BaseModel):
    id: int
    kind: str
    key: str
    title: str
    url: str | None
    created_at: datetime
    archived_at: datetime | None
    shares: int = Field(description="How often reps shared it.")
    last_shared_at: datetime | None


class ItemPage(schemas.Page):
    items: list[ItemOut]


class ShareIn(BaseModel):
    item_id: int | None = Field(None, ge=1, le=schemas.MAX_ID, description="The item; or give `kind` and `key`.")
    kind: Kind | None = None
    key: Key | None = None
    lead_id: int | None = Field(None, ge=1, le=schemas.MAX_ID, description="The lead; or its `email`, or a `deal_id`.")
    email: Email | None = None
    deal_id: int | None = Field(None, ge=1, le=schemas.MAX_ID)
    by: Email | None = Field(None, description="The rep who shared it (default: the API key's name).")
    at: schemas.Moment | None = Field(None, description="When it was shared (default: now).")
    note: Annotated[str, Field(max_length=5000, pattern=r"^[^\x00]*$")] | None = None


class ShareOut(BaseModel):
    id: int
    item_id: int
    kind: str
    title: str
    lead_id: int
    email: str | None = None
    deal_id: int | None
    by: str
    at: datetime
    logged_at: datetime
    note: str | None


class SharePage(schemas.Page):
    items: list[ShareOut]


@router.post("/shares", response_model=ShareOut, status_code=201)
def share(body: ShareIn, app: AppDep, key: Authorized) -> ShareOut:
    """A rep shared a content item with a lead (logged by the rep, or by the CRM on their behalf)."""
    stored = content_service.share(app.uow(), item_id=body.item_id, kind=body.kind, key=body.key, lead_id=body.lead_id,
                                   email=body.email, deal_id=body.deal_id, by=body.by or f"api:{key.name}", at=body.at,
                                   note=body.note, now=utc_now())
    return ShareOut(**stored)


@router.get("/shares", response_model=SharePage)
def list_shares(
    app: AppDep,
    item_id: Annotated[int | None, Query(ge=1, le=schemas.MAX_ID)] = None,
    lead_id: Annotated[int | None, Query(ge=1, le=schemas.MAX_ID)] = None,
    by: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[schemas.Limit, Query()] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SharePage:
    """Shares, the last logged first."""
    rows = content_service.shares(app.read_uow(), item_id=item_id, lead_id=lead_id, by=by,
                                  before=schemas.cursor_id(cursor), limit=limit)
    return SharePage(items=[ShareOut(**row) for row in rows],
                     next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None)


@router.get("", response_model=ItemPage)
def list_items(
    app: AppDep,
    kind: Annotated[Kind | None, Query()] = None,
    archived: Annotated[bool, Query(description="false (default): live items; true: archived ones.")] = False,
    limit: Annotated[schemas.Limit, Query()] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ItemPage:
    """Content items, newest first, each with how often reps shared it."""
    rows = content_service.items(app.read_uow(), kind=kind, archived=archived, before=schemas.cursor_id(cursor),
                                 limit=limit)
    return ItemPage(items=[ItemOut(**row) for row in rows],
                    next_cursor=schemas.encode_cursor(rows[-1]["id"]) if len(rows) == limit else None)


@router.post("", response_model=ItemOut, status_code=201)
def add_item(body: ItemIn, app: AppDep, response: Response) -> ItemOut:
    """Make a piece of content known: an asset, a page, an email or a webinar."""
    item = content_service.add_item(app.uow(), kind=body.kind, key=body.key, title=body.title, url=body.url,
                                    now=utc_now())
    response.headers["Location"] = f"/api/v1/content/{item['id']}"
    return ItemOut(**item)


@router.get("/{item_id}", response_model=ItemOut)
def get_item(item_id: ItemId, app: AppDep) -> ItemOut:
    return ItemOut(**content_service.get_item(app.read_uow(), item_id))


@router.patch("/{item_id}", response_model=ItemOut)
def update_item(item_id: ItemId, body: ItemPatch, app: AppDep) -> ItemOut:
    """Rename an item, change its address, archive it (or bring it back)."""
    return ItemOut(**content_service.update_item(app.uow(), item_id, title=body.title, url=body.url,
                                                 archived=body.archived, now=utc_now()))

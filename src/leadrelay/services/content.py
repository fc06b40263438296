"""Use cases on content: the items marketing makes (assets, pages, emails, webinars) and the shares
sales logs when a rep sends one to a lead."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadrelay.adapters.content import KEY_LENGTH, KINDS, ContentRepository
from leadrelay.domain.deals import CLOCK_SKEW
from leadrelay.domain.errors import InvalidInput, LeadNotFound, NotFound
from leadrelay.services.unit_of_work import UnitOfWork


class ContentItemNotFound(NotFound):
    code = "content_item_not_found"


def _text(value: str | None, name: str, length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput(f"{name}: must not be empty", "invalid_content")
    if len(text) > length:
        raise InvalidInput(f"{name}: longer than {length} characters", "invalid_content")
    if "\x00" in text:
        raise InvalidInput(f"{name}: contains a NUL character", "invalid_content")
    return text


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}", "invalid_content")
    return kind


def add_item(uow: UnitOfWork, *, kind: str, key: str, title: str | None = None, url: str | None = None,
             now: datetime) -> dict[str, Any]:
    """A new content item. `key` is how events name it: the asset of a download, the path of a
    page, the campaign of an email, the webinar of a webinar attended."""
    kind, key = _kind(kind), _text(key, "key", KEY_LENGTH)
    with uow:
        repo = ContentRepository(uow.connection)
        if repo.item_by_key(kind, key) is not None:
            raise InvalidInput(f"key: there is already a content item of kind {kind} with key {key!r}", "content_item_exists")
        item = repo.add_item({"kind": kind, "key": key, "title": _text(title or key, "title", 300),
                              "url": url.strip() if url and url.strip() else None, "created_at": now})
        uow.commit()
    return {**item, "shares": 0, "last_shared_at": None}


def update_item(uow: UnitOfWork, item_id: int, *, title: str | None = None, url: str | None = None,
                archived: bool | None = None, now: datetime) -> dict[str, Any]:
    with uow:
        repo = ContentRepository(uow.connection)
        item = repo.item(item_id)
        if item is None:
            raise ContentItemNotFound(f"there is no content item {item_id}")
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = _text(title, "title", 300)
        if url is not None:
            values["url"] = url.strip() or None
        if archived is not None:
            values["archived_at"] = (item["archived_at"] or now) if archived else None
        if values:
            repo.update_item(item_id, values)
            uow.commit()
        return repo.items(archived=None, item_id=item_id)[0]


def get_item(uow: UnitOfWork, item_id: int) -> dict[str, Any]:
    with uow:
        found = ContentRepository(uow.connection).items(archived=None, item_id=item_id)
    if not found:
        raise ContentItemNotFound(f"there is no content item {item_id}")
    return found[0]


def items(uow: UnitOfWork, *, kind: str | None = None, archived: bool | None = False, before: int | None = None,
          limit: int = 100) -> list[dict[str, Any]]:
    if kind is not None:
        _kind(kind)
    with uow:
        return ContentRepository(uow.connection).items(kind=kind, archived=archived, before=before, limit=limit)


def share(uow: UnitOfWork, *, item_id: int | None = None, kind: str | None = None, key: str | None = None,
          lead_id: int | None = None, email: str | None = None, deal_id: int | None = None, by: str,
          at: datetime | None = None, note: str | None = None, now: datetime) -> dict[str, Any]:
    """A rep shared a content item with a lead (by lead id, email, or one of its deals)."""
    by = _text(by, "by", 320).lower()
    at = at or now
    if at > now + CLOCK_SKEW:
        raise InvalidInput("at: a share cannot be in the future", "invalid_share")
    with uow:
        repo = ContentRepository(uow.connection)
        if item_id is not None:
            item = repo.item(item_id)
        elif kind is not None and key is not None:
            item = repo.item_by_key(_kind(kind), key.strip())
        else:
            raise InvalidInput("item: give the item's id, or its kind and key", "invalid_share")
        if item is None:
            raise ContentItemNotFound(f"there is no content item {item_id if item_id is not None else (kind, key)}")
        if deal_id is not None:
            found = repo.deal_lead(deal_id)
            if found is None:
                raise NotFound(f"there is no deal {deal_id}")
            lead = repo.lead_id(lead_id=found, email=None)
        elif lead_id is not None or email:
            lead = repo.lead_id(lead_id=lead_id, email=email.strip().lower() if email else None)
        else:
            raise InvalidInput("lead: give the lead's id or email, or a deal", "invalid_share")
        if lead is None:
            raise LeadNotFound(f"there is no lead {lead_id if lead_id is not None else email}")
        stored = repo.add_share({"item_id": item["id"], "lead_id": lead, "deal_id": deal_id or repo.deal_at(lead, at),
                                 "by": by, "at": at, "logged_at": now, "note": note})
        found = repo.shares(item_id=item["id"], lead_id=lead, before=stored["id"] + 1, limit=1)
        uow.commit()
    return found[0]


def shares(uow: UnitOfWork, *, item_id: int | None = None, lead_id: int | None = None, by: str | None = None,
           before: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
    with uow:
        return ContentRepository(uow.connection).shares(item_id=item_id, lead_id=lead_id,
                                                        by=by.strip().lower() if by else None, before=before, limit=limit)

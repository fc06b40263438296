"""Content items (assets, pages, emails, webinars) and the shares reps log, in the store; and how
events name content, so that what a lead consumed can be matched to the items."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from leadrelay.adapters.tables import content_items, content_shares, deals, leads

KINDS = ("asset", "page", "email", "webinar")

# event name -> (content kind, the properties that name the item, tried in order)
CONTENT_EVENTS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    **{name: ("asset", ("asset", "file", "title")) for name in ("download", "downloaded", "file_downloaded")},
    **{name: ("webinar", ("webinar", "title", "name")) for name in ("webinar_attended", "webinar_joined")},
    **{name: ("email", ("campaign", "campaign_name", "email_id", "email_subject"))
       for name in ("email_open", "email_opened", "email_click", "email_clicked", "email_link_clicked")},
    "page_view": ("page", ("path",)),
}
KEY_LENGTH = 500


def content_key(name: str, properties: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The (kind, key) of the content an event is about, or None for an event about no content."""
    found = CONTENT_EVENTS.get(name)
    if found is None or not isinstance(properties, Mapping):
        return None
    kind, names = found
    for prop in names:
        value = properties.get(prop)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return kind, str(value).strip()[:KEY_LENGTH]
    return None


class ContentRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def add_item(self, values: dict[str, Any]) -> dict[str, Any]:
        row = self.connection.execute(insert(content_items).returning(*content_items.c), values).one()
        return dict(row._mapping)

    def item(self, item_id: int) -> dict[str, Any] | None:
        row = self.connection.execute(select(content_items).where(content_items.c.id == item_id)).first()
        return None if row is None else dict(row._mapping)

    def item_by_key(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self.connection.execute(
            select(content_items).where(content_items.c.kind == kind, content_items.c.key == key)).first()
        return None if row is None else dict(row._mapping)

    def update_item(self, item_id: int, values: dict[str, Any]) -> None:
        self.connection.execute(update(content_items).where(content_items.c.id == item_id).values(values))

    def items(self, *, kind: str | None = None, archived: bool | None = False, before: int | None = None,
              limit: int = 100, item_id: int | None = None) -> list[dict[str, Any]]:
        """Items, newest first, each with how often it was shared and when last."""
        shared = (select(content_shares.c.item_id, func.count().label("shares"), func.max(content_shares.c.at).label("last_shared_at"))
                  .group_by(content_shares.c.item_id).subquery())
        query = select(content_items, func.coalesce(shared.c.shares, 0).label("shares"), shared.c.last_shared_at).outerjoin(
            shared, shared.c.item_id == content_items.c.id)
        if kind is not None:
            query = query.where(content_items.c.kind == kind)
        if item_id is not None:
            query = query.where(content_items.c.id == item_id)
        if archived is not None:
            query = query.where(content_items.c.archived_at.is_(None) if not archived
                                else content_items.c.archived_at.is_not(None))
        if before is not None:
            query = query.where(content_items.c.id < before)
        rows = self.connection.execute(query.order_by(content_items.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]

    def lead_id(self, *, lead_id: int | None, email: str | None) -> int | None:
        """The lead (not merged away: a merged lead's id leads to the lead it was merged into)."""
        column = leads.c.id if lead_id is not None else leads.c.email
        row = self.connection.execute(select(leads.c.id, leads.c.merged_into).where(
            column == (lead_id if lead_id is not None else email))).first()
        if row is None:
            return None
        return row.merged_into or row.id

    def deal_at(self, lead_id: int, at: datetime) -> int | None:
        """The lead's deal that was open at that moment, if any."""
        return self.connection.scalar(
            select(deals.c.id).where(deals.c.lead_id == lead_id, deals.c.opened_at <= at,
                                     (deals.c.closed_at.is_(None)) | (deals.c.closed_at > at))
            .order_by(deals.c.id.desc()).limit(1))

    def deal_lead(self, deal_id: int) -> int | None:
        return self.connection.scalar(select(deals.c.lead_id).where(deals.c.id == deal_id))

    def add_share(self, values: dict[str, Any]) -> dict[str, Any]:
        row = self.connection.execute(insert(content_shares).returning(*content_shares.c), values).one()
        return dict(row._mapping)

    def shares(self, *, item_id: int | None = None, lead_id: int | None = None, by: str | None = None,
               since: datetime | None = None, until: datetime | None = None, before: int | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
        """Shares, the last logged first, with the item's kind and title and the lead's email."""
        query = (select(content_shares, content_items.c.kind, content_items.c.title, leads.c.email)
                 .join(content_items, content_items.c.id == content_shares.c.item_id)
                 .join(leads, leads.c.id == content_shares.c.lead_id))
        for column, value in ((content_shares.c.item_id, item_id), (content_shares.c.lead_id, lead_id),
                              (content_shares.c.by, by)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(content_shares.c.at >= since)
        if until is not None:
            query = query.where(content_shares.c.at < until)
        if before is not None:
            query = query.where(content_shares.c.id < before)
        rows = self.connection.execute(query.order_by(content_shares.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]

    def deals_to_share_with(self) -> list[Any]:
        """Every deal, oldest first: its id, lead, owner, when it opened and closed (the demo's reps
        share content on them)."""
        query = select(deals.c.id, deals.c.lead_id, deals.c.owner, deals.c.opened_at, deals.c.closed_at).order_by(
            deals.c.id)
        return list(self.connection.execute(query))

    def add_shares(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(insert(content_shares), rows)

"""Everything the database holds about one person, to export it or to erase it.

A person is the lead with their email, the leads merged into it (other addresses of the same
person) and the lead it was merged into. What is held about them:

- by lead: the lead row, identities, events, stage history, deals (with the hand-off package),
  deal activity, tasks, touches, SLA clocks, nurture enrollments, sent emails, content shares and
  the report tables derived from them (facts, stays, stages reached, attribution, content);
- whatever other table refers to a lead (say, its predicted score);
- by email: the suppression list, outbox items (webhook and email payloads) and refused tracking
  messages that name one of their addresses, and the deliveries of those outbox items.

Erasing keeps what the reports count, stripped of anything that identifies the person: the lead
row stays with its stage, highest stage, dates, source and scores (its email becomes
`erased-ID@erased.invalid`, its fields, name, company and touch details go), the stage history,
deals (their package emptied), clocks, the touches' kind, time and rep (their notes go), the sent
emails' counts (address and subject go) and the report tables. Everything else goes, including the
rows of any other table that refers to the lead.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from leadrelay.adapters import tables
from leadrelay.adapters.tables import (
    deal_activity,
    deals,
    deliveries,
    email_sends,
    erasures,
    events,
    identities,
    leads,
    metadata,
    outbox,
    rejected_messages,
    sequence_enrollments,
    suppressions,
    tasks,
    touches,
)

ERASED_DOMAIN = "erased.invalid"  # .invalid: a name that can never be a real address (RFC 2606)
CHUNK = 500
MIN_NAME = 5  # shorter names are not searched for in free text (they would match other people's)
_TOUCH_KEYS = ("source", "medium", "campaign")  # what the reports group by; the rest (pages, referrers) goes


# the tables about leads whose rows stay (stripped above where they hold anything personal), or
# that are dealt with one by one; rows of every other table that refers to a lead are deleted
KEPT_BY_LEAD = frozenset({
    "leads", "identities", "events", "stage_changes", "deals", "tasks", "touches", "sequence_enrollments",
    "email_sends", "content_shares", "lead_facts", "stage_spans", "stage_reached", "attribution", "lead_content",
    "erasures",
})


def erased_email(lead_id: int) -> str:
    return f"erased-{lead_id}@{ERASED_DOMAIN}"


def _chunks(values: Collection[Any]) -> Iterable[list[Any]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _lead_columns(table: Table) -> list[Column[Any]]:
    """The columns of `table` that refer to a lead."""
    return [column for column in table.columns
            if any(key.column.table is leads for key in column.foreign_keys)]


def _deal_columns(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns
            if any(key.column.table is deals for key in column.foreign_keys)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value


class PersonalData:
    """The queries of export and erasure (on the caller's transaction)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # --- who -------------------------------------------------------------------------------
    def lead_ids(self, email: str) -> list[int]:
        """The person's leads: the lead with this email, what it was merged into, and every lead
        merged into those (in id order); none when no lead has this email."""
        found = self.connection.execute(select(leads.c.id, leads.c.merged_into).where(leads.c.email == email)).first()
        if found is None:
            return []
        root, parent = found.id, found.merged_into
        seen = {root}
        while parent is not None and parent not in seen:  # up to the lead it stands for now
            seen.add(parent)
            root = parent
            parent = self.connection.scalar(select(leads.c.merged_into).where(leads.c.id == parent))
        group, frontier = {root}, {root}
        while frontier:  # and down to every lead merged into it
            frontier = set(self.connection.scalars(select(leads.c.id).where(leads.c.merged_into.in_(sorted(frontier)))))
            frontier -= group
            group |= frontier
        return sorted(group)

    def emails(self, lead_ids: Collection[int]) -> list[str]:
        return sorted(self.connection.scalars(select(leads.c.email).where(leads.c.id.in_(list(lead_ids)))))

    def identity_values(self, lead_ids: Collection[int]) -> list[str]:
        """The user and visitor ids that stand for the person."""
        return list(self.connection.scalars(select(identities.c.value).where(identities.c.lead_id.in_(list(lead_ids)))))

    def deal_ids(self, lead_ids: Collection[int]) -> list[int]:
        return list(self.connection.scalars(select(deals.c.id).where(deals.c.lead_id.in_(list(lead_ids)))))

    def _naming(self, column: Any, emails: Collection[str]) -> Any:
        """Rows whose text (or JSON, as text) holds one of these addresses."""
        text = column if isinstance(column.type, Text) else cast(column, Text)
        return or_(*(func.lower(text).contains(email.lower(), autoescape=True) for email in emails))

    def names(self, lead_ids: Collection[int]) -> list[str]:
        """The person's names, as their leads' `name` fields hold them (long enough to search for)."""
        found = self.connection.scalars(select(leads.c.fields).where(leads.c.id.in_(list(lead_ids))))
        return sorted({name.strip() for fields in found if isinstance(fields, dict)
                       and isinstance(name := fields.get("name"), str) and len(name.strip()) >= MIN_NAME})

    def outbox_ids(self, lead_ids: Collection[int], emails: Collection[str]) -> list[int]:
        """Outbox items about the person: their emails, the webhooks and notifications that name
        their lead (by id, address or name)."""
        ids = list(lead_ids)
        keys = select(email_sends.c.key).where(email_sends.c.lead_id.in_(ids))
        payload = outbox.c.payload
        conditions = [outbox.c.key.in_(keys), payload["lead_id"].as_integer().in_(ids),
                      payload[("data", "lead", "id")].as_integer().in_(ids)]
        needles = [*emails, *self.names(ids)]
        if needles:
            conditions.append(self._naming(payload, needles))
        return list(self.connection.scalars(select(outbox.c.id).where(or_(*conditions)).order_by(outbox.c.id)))

    def rejected_ids(self, emails: Collection[str]) -> list[int]:
        if not emails:
            return []
        return list(self.connection.scalars(
            select(rejected_messages.c.id).where(self._naming(rejected_messages.c.message, emails))))

    # --- export ----------------------------------------------------------------------------
    def export(self, lead_ids: Collection[int]) -> dict[str, list[dict[str, Any]]]:
        """Every row about the person, by table (tables with none are left out)."""
        ids, emails = list(lead_ids), self.emails(lead_ids)
        deal_ids = self.deal_ids(ids)
        found: dict[str, list[dict[str, Any]]] = {}

        def rows(table: Table, condition: Any) -> None:
            order = list(table.primary_key.columns)
            result = [{key: _jsonable(value) for key, value in row._mapping.items()}
                      for row in self.connection.execute(select(table).where(condition).order_by(*order))]
            if result:
                found.setdefault(str(table.name), []).extend(result)

        for table in metadata.sorted_tables:
            conditions = [column.in_(ids) for column in _lead_columns(table)]
            if table is leads:
                conditions.append(leads.c.id.in_(ids))
            elif not conditions and deal_ids:
                conditions = [column.in_(deal_ids) for column in _deal_columns(table)]
            if conditions:
                rows(table, or_(*conditions))
        values = self.identity_values(ids)
        if values:
            rows(events, and_(events.c.lead_id.is_(None),
                              or_(events.c.user_id.in_(values), events.c.anonymous_id.in_(values))))
        rows(suppressions, suppressions.c.email.in_(emails))
        outbox_ids = self.outbox_ids(ids, emails)
        rows(outbox, outbox.c.id.in_(outbox_ids))
        rows(deliveries, deliveries.c.outbox_id.in_(outbox_ids))
        rows(rejected_messages, rejected_messages.c.id.in_(self.rejected_ids(emails)))
        return found

    # --- erase -----------------------------------------------------------------------------
    def erase(self, lead_ids: Collection[int], *, now: datetime, by: str) -> dict[str, int]:
        """Erase the person (see the module's text); how many rows of each table were removed or
        stripped."""
        ids = list(lead_ids)
        if self.connection.dialect.name == "postgresql":  # a batch storing events for them waits, or went first
            self.connection.execute(select(leads.c.id).where(leads.c.id.in_(ids)).order_by(leads.c.id).with_for_update())
        else:  # what is deleted or overwritten is zeroed in the file, not left in free space
            self.connection.exec_driver_sql("PRAGMA secure_delete = ON")
        emails, deal_ids = self.emails(ids), self.deal_ids(ids)
        done: dict[str, int] = {}

        def count(name: str, rows: int) -> None:
            if rows:
                done[str(name)] = done.get(str(name), 0) + rows  # a plain str (table names are a subclass)

        execute = self.connection.execute
        # what goes: by lead ...
        outbox_ids = self.outbox_ids(ids, emails)  # before the names go
        for chunk in _chunks(outbox_ids):
            execute(delete(deliveries).where(deliveries.c.outbox_id.in_(chunk)))
            count("outbox", execute(delete(outbox).where(outbox.c.id.in_(chunk))).rowcount)
        identity_values = self.identity_values(ids)
        count("identities", execute(delete(identities).where(identities.c.lead_id.in_(ids))).rowcount)
        count("events", execute(delete(events).where(events.c.lead_id.in_(ids))).rowcount)
        for chunk in _chunks(identity_values):  # and the visitor's events still waiting for a lead
            count("events", execute(delete(events).where(
                events.c.lead_id.is_(None), or_(events.c.user_id.in_(chunk), events.c.anonymous_id.in_(chunk)))).rowcount)
        count("tasks", execute(delete(tasks).where(tasks.c.lead_id.in_(ids))).rowcount)
        count("suppressions", execute(delete(suppressions).where(suppressions.c.email.in_(emails))).rowcount)
        for chunk in _chunks(self.rejected_ids(emails)):
            count("rejected_messages", execute(delete(rejected_messages).where(rejected_messages.c.id.in_(chunk))).rowcount)

        for table in metadata.sorted_tables:  # any other table about leads (predicted scores, ...): its rows go
            if table.name not in KEPT_BY_LEAD:
                for column in _lead_columns(table):
                    count(table.name, execute(delete(table).where(column.in_(ids))).rowcount)

        # ... what stays, stripped: the rows the reports count
        count("touches", execute(update(touches).where(touches.c.lead_id.in_(ids)).values(note=None)).rowcount)
        count("content_shares", execute(update(tables.content_shares).where(tables.content_shares.c.lead_id.in_(ids))
                                        .values(note=None)).rowcount)
        count("email_sends", execute(update(email_sends).where(email_sends.c.lead_id.in_(ids))
                                     .values(email="", domain=ERASED_DOMAIN, subject="")).rowcount)
        count("sequence_enrollments", execute(
            update(sequence_enrollments).where(sequence_enrollments.c.lead_id.in_(ids),
                                               sequence_enrollments.c.status == "active")
            .values(status="exited", exit_reason="erased", ended_at=now, next_at=None)).rowcount)
        if deal_ids:
            count("deals", execute(update(deals).where(deals.c.id.in_(deal_ids)).values(package={"erased": True})).rowcount)
            count("deal_activity", execute(update(deal_activity).where(deal_activity.c.deal_id.in_(deal_ids),
                                                                       deal_activity.c.note.is_not(None))
                                           .values(note=None)).rowcount)
        for row in self.connection.execute(select(leads.c.id, leads.c.first_touch, leads.c.last_touch)
                                           .where(leads.c.id.in_(ids))):
            execute(update(leads).where(leads.c.id == row.id).values(
                email=erased_email(row.id), fields={}, account_id=None, fit_breakdown=[], engagement_rules={},
                first_touch=_stripped(row.first_touch), last_touch=_stripped(row.last_touch)))
        count("leads", len(ids))
        if self.connection.dialect.name == "sqlite":  # done: the connection's other work goes at full speed
            self.connection.exec_driver_sql("PRAGMA secure_delete = OFF")
        erased = set(self.connection.scalars(select(erasures.c.lead_id).where(erasures.c.lead_id.in_(ids))))
        fresh = [lead_id for lead_id in ids if lead_id not in erased]
        if fresh:
            execute(insert(erasures), [{"lead_id": lead_id, "erased_at": now, "erased_by": by, "removed": done}
                                       for lead_id in fresh])
        return done

    def is_erased(self, lead_id: int) -> bool:
        return self.connection.scalar(select(erasures.c.id).where(erasures.c.lead_id == lead_id)) is not None

    # --- retention -------------------------------------------------------------------------
    def delete_events_before(self, moment: datetime, *, limit: int) -> int:
        """Delete up to `limit` events that happened before `moment`; how many."""
        oldest = select(events.c.id).where(events.c.timestamp < moment).limit(limit)
        ids = list(self.connection.scalars(oldest))
        if not ids:
            return 0
        return int(self.connection.execute(delete(events).where(events.c.id.in_(ids))).rowcount)

    def delete_rejected_before(self, moment: datetime, *, limit: int) -> int:
        """Delete up to `limit` refused tracking messages received before `moment`; how many."""
        ids = list(self.connection.scalars(select(rejected_messages.c.id)
                                           .where(rejected_messages.c.received_at < moment).limit(limit)))
        if not ids:
            return 0
        return int(self.connection.execute(delete(rejected_messages).where(rejected_messages.c.id.in_(ids))).rowcount)


def compact_log(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database file and empty it, so that the pages as
    they were before an erasure do not linger in it (best effort: a reader may still hold it)."""
    if engine.dialect.name != "sqlite":
        return
    connection = engine.raw_connection()  # outside any transaction, as a checkpoint must be
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        connection.close()


def _stripped(touch: Any) -> dict[str, Any] | None:
    if not isinstance(touch, dict):
        return None
    kept = {key: touch[key] for key in _TOUCH_KEYS if touch.get(key) is not None}
    return kept or None

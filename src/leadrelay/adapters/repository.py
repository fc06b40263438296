"""Every query on leads, events and their history: batch first, never one round trip per row."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
import psycopg
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Row,
    any_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from leadrelay.adapters.tables import accounts, events, identities, leads, stage_changes
from leadrelay.domain.clock import UTC
from leadrelay.domain.errors import LeadNotFound
from leadrelay.domain.model import (
    Engagement,
    Event,
    Lead,
    RuleScore,
    StageChange,
    normalize_email,
)

Key = tuple[str, str]  # an identity: ("user", userId) or ("anonymous", anonymousId)
CHUNK = 5000  # values per IN (...) list: well under every database's parameter limit
MAX_KEY_LOCKS = 1000  # a batch naming more keys than this takes BATCH_LOCK alone (PostgreSQL)
BATCH_LOCK = 0x4C52_0003  # held shared by small batches, exclusively by large ones
T = TypeVar("T")


def _chunks(values: Collection[T], size: int = CHUNK) -> Iterator[list[T]]:
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _lead_from_row(row: Row[Any]) -> Lead:
    rules = {name: RuleScore(*values) for name, values in (row.engagement_rules or {}).items()}
    return Lead(
        id=row.id,
        email=row.email,
        account_id=row.account_id,
        stage=row.stage,
        highest_stage=row.highest_stage,
        stage_entered_at=row.stage_entered_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        fields=dict(row.fields or {}),
        fit=row.fit,
        fit_breakdown=dict(row.fit_breakdown or {}),
        engagement=Engagement(row.engagement_as_of, rules),
        owner=row.owner,
        merged_into=row.merged_into,
        first_touch=row.first_touch,
        last_touch=row.last_touch,
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_or_null(value: Any) -> str | None:
    return None if value is None else _json(value)


def _rules_json(lead: Lead) -> dict[str, list[Any]]:
    return {
        name: [round(s.value, 9), round(s.awarded, 6), s.days]
        for name, s in lead.engagement.rules.items()
    }


def _lead_values(lead: Lead, now: datetime) -> dict[str, Any]:
    return {
        "email": lead.email,
        "account_id": lead.account_id,
        "stage": lead.stage,
        "highest_stage": lead.highest_stage,
        "stage_entered_at": lead.stage_entered_at,
        "created_at": lead.created_at,
        "updated_at": now,
        "fields": lead.fields,
        "fit": lead.fit,
        "fit_breakdown": lead.fit_breakdown,
        "engagement": lead.engagement.total,
        "engagement_as_of": lead.engagement.as_of,
        "engagement_rules": _rules_json(lead),
        "owner": lead.owner,
        "merged_into": lead.merged_into,
        "source": lead.source,
        "first_touch": lead.first_touch,
        "last_touch": lead.last_touch,
    }


def _event_from_row(row: Row[Any]) -> Event:
    return Event(
        message_id=row.message_id,
        type=row.type,
        name=row.name,
        timestamp=row.timestamp,
        user_id=row.user_id,
        anonymous_id=row.anonymous_id,
        properties=row.properties or {},
        traits=row.traits or {},
        touch=row.touch,
        points=row.points,
        stored=True,
    )


@dataclass(frozen=True, slots=True)
class LeadFilter:
    """What a list of leads can be narrowed by (None: any)."""

    stage: str | None = None
    owner: str | None = None
    source: str | None = None
    email: str | None = None
    account_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


class LeadRepository:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._sqlite = connection.dialect.name == "sqlite"
        self._marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"

    # The hot batch writes go straight to the driver's executemany, values converted here
    # once, in the form the column type would store them (SQLAlchemy's per-row type
    # processing costs more than the insert itself).
    def _time(self, moment: datetime | None) -> Any:
        if moment is None:
            return None
        if moment.tzinfo is None:
            raise ValueError(f"naive datetime {moment.isoformat()} cannot be stored")
        if not self._sqlite:
            return moment
        if moment.tzinfo is not UTC:
            moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds")

    def _among(self, column: ColumnElement[Any], values: list[Any]) -> ColumnElement[bool]:
        """`column IN (values)`; on PostgreSQL one array parameter (`= ANY`), so the statement
        text stays short and the same whatever the number of values."""
        if self._sqlite:
            return column.in_(values)
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))

    def _executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.connection.exec_driver_sql(sql.replace("?", self._marker), rows)

    def take_turns(self, keys: Collection[str]) -> None:
        """Until this unit of work ends, wait for (then keep out) every other one that names any of
        these keys (emails, identities, message ids). On PostgreSQL: transaction-scoped advisory
        locks, taken in one order (so two batches never wait on each other in a circle); they cover
        leads, identities and events not stored yet, which row locks cannot. A large batch (an
        import) takes one lock that keeps every other batch out instead, as PostgreSQL's lock table
        is not made for tens of thousands of locks; small batches hold that one shared. SQLite's
        unit of work holds the write lock already."""
        if self._sqlite or not keys:
            return
        if len(keys) > MAX_KEY_LOCKS:
            self.connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({BATCH_LOCK})")
            return
        self.connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({BATCH_LOCK})")
        self.connection.exec_driver_sql(
            "SELECT count(pg_advisory_xact_lock(key)) FROM (SELECT DISTINCT hashtextextended(value, 7446) AS key"
            " FROM unnest(%s::text[]) AS value ORDER BY key) AS keys",
            (sorted(keys),),
        )

    # --- reading -------------------------------------------------------------------------
    def by_emails(self, emails: Collection[str], *, lock: bool = False) -> dict[str, Lead]:
        """Leads by email; with `lock`, their rows stay locked for this unit of work (on
        PostgreSQL: FOR UPDATE, in id order; SQLite's unit of work holds the write lock already)."""
        found: dict[str, Lead] = {}
        for chunk in _chunks(emails):
            found.update((lead.email, lead) for lead in self._load(leads.c.email, chunk, lock))
        return found

    def by_ids(self, ids: Collection[int], *, lock: bool = False) -> dict[int, Lead]:
        found: dict[int, Lead] = {}
        for chunk in _chunks(ids):
            found.update((lead.id, lead) for lead in self._load(leads.c.id, chunk, lock))  # type: ignore[misc]
        return found

    def find(self, reference: str | int, *, lock: bool = False) -> Lead:
        """A lead by email or id; a lead merged away stands for the lead it was merged into (with
        `lock` as in `by_emails`). LeadNotFound when there is none."""
        if isinstance(reference, int):
            lead = self.by_ids([reference], lock=lock).get(reference)
        else:
            lead = self.by_emails([normalize_email(reference)], lock=lock).get(normalize_email(reference))
        if lead is None:
            raise LeadNotFound(f"no lead with {'id' if isinstance(reference, int) else 'email'} {reference!r}")
        while lead.merged_into is not None:
            lead = self.by_ids([lead.merged_into], lock=lock)[lead.merged_into]
        return lead

    def _load(self, column: ColumnElement[Any], values: list[Any], lock: bool) -> list[Lead]:
        query = select(leads).where(self._among(column, values))
        if lock:
            query = query.order_by(leads.c.id).with_for_update()
        return [_lead_from_row(row) for row in self.connection.execute(query)]

    def get(self, lead_id: int) -> Lead | None:
        return self.by_ids([lead_id]).get(lead_id)

    def by_email(self, email: str) -> Lead | None:
        return self.by_emails([email]).get(email)

    def ids(self, after: int = 0, limit: int = CHUNK) -> list[int]:
        query = select(leads.c.id).where(leads.c.id > after, leads.c.merged_into.is_(None))
        return list(self.connection.scalars(query.order_by(leads.c.id).limit(limit)))

    def count(self) -> int:
        return self.connection.scalar(select(func.count()).select_from(leads).where(leads.c.merged_into.is_(None))) or 0

    def identity_owners(self, keys: Collection[Key]) -> dict[Key, int]:
        found: dict[Key, int] = {}
        for kind in ("user", "anonymous"):
            values = [value for k, value in keys if k == kind]
            for chunk in _chunks(values):
                query = select(identities.c.value, identities.c.lead_id).where(
                    identities.c.kind == kind, self._among(identities.c.value, chunk)
                )
                for value, lead_id in self.connection.execute(query):
                    found[(kind, value)] = lead_id
        return found

    def account_ids(self, domains: Collection[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(domains):
            query = select(accounts.c.domain, accounts.c.id).where(self._among(accounts.c.domain, chunk))
            found.update({domain: account_id for domain, account_id in self.connection.execute(query)})
        return found

    def known_message_ids(self, message_ids: Collection[str]) -> set[str]:
        known: set[str] = set()
        for chunk in _chunks(message_ids):
            query = select(events.c.message_id).where(self._among(events.c.message_id, chunk))
            known.update(self.connection.scalars(query))
        return known

    def unattached_events(self, keys: Collection[Key]) -> list[Event]:
        """Stored events of visitors not yet tied to a lead, for these identities."""
        found: list[Event] = []
        for kind, column in (("user", events.c.user_id), ("anonymous", events.c.anonymous_id)):
            values = [value for k, value in keys if k == kind]
            for chunk in _chunks(values):
                query = select(events).where(events.c.lead_id.is_(None), column.in_(chunk))
                found.extend(_event_from_row(row) for row in self.connection.execute(query))
        return found

    def events_of(self, lead_ids: Collection[int]) -> dict[int, list[Event]]:
        """Each lead's events, oldest first."""
        found: dict[int, list[Event]] = {lead_id: [] for lead_id in lead_ids}
        for chunk in _chunks(lead_ids):
            query = select(events).where(self._among(events.c.lead_id, chunk)).order_by(events.c.lead_id, events.c.timestamp, events.c.id)
            for row in self.connection.execute(query):
                found[row.lead_id].append(_event_from_row(row))
        return found

    def history(self, lead_id: int) -> list[dict[str, Any]]:
        query = select(stage_changes).where(stage_changes.c.lead_id == lead_id).order_by(stage_changes.c.at, stage_changes.c.id)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def page(self, filters: LeadFilter, *, before: int | None, limit: int) -> list[Lead]:
        """Leads that match, newest first (by id), the ones before the id `before`."""
        query = select(leads).where(leads.c.merged_into.is_(None))
        exact = {"stage": leads.c.stage, "owner": leads.c.owner, "source": leads.c.source,
                 "email": leads.c.email, "account_id": leads.c.account_id}
        for name, column in exact.items():
            value = getattr(filters, name)
            if value is not None:
                query = query.where(column == value)
        if filters.created_after is not None:
            query = query.where(leads.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            query = query.where(leads.c.created_at < filters.created_before)
        if filters.updated_after is not None:
            query = query.where(leads.c.updated_at >= filters.updated_after)
        if filters.updated_before is not None:
            query = query.where(leads.c.updated_at < filters.updated_before)
        if before is not None:
            query = query.where(leads.c.id < before)
        return [_lead_from_row(row) for row in self.connection.execute(query.order_by(leads.c.id.desc()).limit(limit))]

    def timeline(self, lead_id: int, *, before: tuple[datetime, int] | None, limit: int) -> list[tuple[int, Event]]:
        """A lead's events, newest first, with their ids; those before (timestamp, id) `before`."""
        query = select(events).where(events.c.lead_id == lead_id)
        if before is not None:
            at, event_id = before
            query = query.where((events.c.timestamp < at) | ((events.c.timestamp == at) & (events.c.id < event_id)))
        query = query.order_by(events.c.timestamp.desc(), events.c.id.desc()).limit(limit)
        return [(row.id, _event_from_row(row)) for row in self.connection.execute(query)]

    def accounts(self, *, domain: str | None = None, account_id: int | None = None, before: int | None = None,
                 limit: int = 50) -> list[dict[str, Any]]:
        """Accounts, newest first, each with how many leads it has."""
        lead_count = (
            select(func.count()).where(leads.c.account_id == accounts.c.id, leads.c.merged_into.is_(None))
            .scalar_subquery().label("leads")
        )
        query = select(accounts, lead_count)
        if domain is not None:
            query = query.where(accounts.c.domain == domain)
        if account_id is not None:
            query = query.where(accounts.c.id == account_id)
        if before is not None:
            query = query.where(accounts.c.id < before)
        rows = self.connection.execute(query.order_by(accounts.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]

    def update_account(self, account_id: int, values: dict[str, Any]) -> None:
        if values:
            self.connection.execute(update(accounts).where(accounts.c.id == account_id).values(values))

    def stage_counts(self, column: str = "stage") -> dict[str, int]:
        query = select(leads.c[column], func.count()).where(leads.c.merged_into.is_(None)).group_by(leads.c[column])
        return {stage: count for stage, count in self.connection.execute(query)}

    def source_stage_counts(self) -> dict[tuple[str | None, str], int]:
        """How many leads came from each source, by the highest stage they reached."""
        query = (select(leads.c.source, leads.c.highest_stage, func.count()).where(leads.c.merged_into.is_(None))
                 .group_by(leads.c.source, leads.c.highest_stage))
        return {(source, stage): count for source, stage, count in self.connection.execute(query)}

    # --- writing (each in one statement per batch) ----------------------------------------
    def add_accounts(self, domains: Iterable[str], now: datetime) -> dict[str, int]:
        """The accounts of these domains, created when new. Another process creating one of them at
        the same moment is no error: its row is the account (ON CONFLICT waits for its commit)."""
        wanted = sorted(set(domains))
        rows = [{"domain": domain, "name": domain, "is_target": False, "created_at": now} for domain in wanted]
        if not rows:
            return {}
        statement = (sqlite_insert if self._sqlite else postgresql_insert)(accounts)
        result = self.connection.execute(
            statement.on_conflict_do_nothing(index_elements=["domain"]).returning(accounts.c.domain, accounts.c.id),
            rows,
        )
        found = {domain: account_id for domain, account_id in result}
        if len(found) < len(wanted):
            found.update(self.account_ids([domain for domain in wanted if domain not in found]))
        return found

    def group_accounts(self, groups: dict[str, dict[str, Any]], now: datetime) -> dict[str, int]:
        """The account of each group id (a `group` call), created when new; `groups` maps each
        id to the traits sent with it (name, website or domain, industry, ...), which update it."""
        found: dict[str, int] = {}
        for chunk in _chunks(groups):
            query = select(accounts.c.group_id, accounts.c.id, accounts.c.traits).where(self._among(accounts.c.group_id, chunk))
            for group_id, account_id, traits in self.connection.execute(query):
                found[group_id] = account_id
                if groups[group_id]:
                    self.connection.execute(
                        update(accounts).where(accounts.c.id == account_id).values(
                            traits={**(traits or {}), **groups[group_id]},
                            name=_group_name(groups[group_id]) or accounts.c.name,
                        )
                    )
        missing = {group_id: traits for group_id, traits in groups.items() if group_id not in found}
        # The accounts with a domain these groups give: one without a group yet is adopted (its
        # id here); one another group named already keeps it (None here), as a domain is unique.
        unnamed: dict[str, int | None] = {}
        for chunk in _chunks({d for traits in missing.values() if (d := _group_domain(traits))}):
            query = select(accounts.c.domain, accounts.c.id, accounts.c.group_id).where(self._among(accounts.c.domain, chunk))
            for domain, account_id, owner in self.connection.execute(query):
                unnamed[domain] = account_id if owner is None else None
        for group_id, traits in missing.items():
            domain = _group_domain(traits)
            account_id = unnamed.get(domain) if domain is not None else None
            if account_id is not None:  # the account its people's email domain made: name its group
                found[group_id], unnamed[domain] = account_id, None  # type: ignore[index]
                self.connection.execute(
                    update(accounts).where(accounts.c.id == account_id).values(group_id=group_id, traits=traits,
                                                                                 name=_group_name(traits) or domain)
                )
                continue
            if domain in unnamed:  # another group has this domain: this one is known by its id alone
                domain = None
            found[group_id] = self.connection.execute(
                accounts.insert().returning(accounts.c.id),
                {"group_id": group_id, "domain": domain, "name": _group_name(traits) or domain or group_id,
                 "traits": traits, "is_target": False, "created_at": now},
            ).scalar_one()
            if domain is not None:
                unnamed[domain] = None
        return found

    def add(self, new: Sequence[Lead], now: datetime) -> None:
        """Insert new leads and give each its id."""
        if not new:
            return
        result = self.connection.execute(
            leads.insert().returning(leads.c.email, leads.c.id),  # matched by email: unique, any order
            [_lead_values(lead, now) for lead in new],
        )
        ids = {email: lead_id for email, lead_id in result}
        for lead in new:
            lead.id = ids[lead.email]
            lead.dirty = False

    def save(self, changed: Sequence[Lead], now: datetime) -> None:
        time, updated = self._time, self._time(now)
        self._executemany(
            "UPDATE leads SET stage=?, highest_stage=?, stage_entered_at=?, updated_at=?, fields=?,"
            " fit=?, fit_breakdown=?, engagement=?, engagement_as_of=?, engagement_rules=?, owner=?,"
            " merged_into=?, account_id=?, created_at=?, source=?, first_touch=?, last_touch=? WHERE id=?",
            [
                (
                    lead.stage, lead.highest_stage, time(lead.stage_entered_at), updated, _json(lead.fields),
                    lead.fit, _json(lead.fit_breakdown), lead.engagement.total, time(lead.engagement.as_of),
                    _json(_rules_json(lead)), lead.owner, lead.merged_into, lead.account_id,
                    time(lead.created_at), lead.source, _json_or_null(lead.first_touch),
                    _json_or_null(lead.last_touch), lead.id,
                )
                for lead in changed
            ],
        )
        for lead in changed:
            lead.dirty = False

    def add_identities(self, pairs: Iterable[tuple[Key, Lead]], now: datetime) -> None:
        rows = [{"kind": kind, "value": value, "lead_id": lead.id, "created_at": now} for (kind, value), lead in pairs]
        if rows:
            self.connection.execute(identities.insert(), rows)

    def add_events(self, batch: Sequence[Event], now: datetime) -> None:
        time, received = self._time, self._time(now)
        columns = ("message_id, lead_id, user_id, anonymous_id, type, name, timestamp, received_at, properties, traits,"
                   " points, touch")
        rows = [
            (
                event.message_id, event.lead.id if event.lead is not None else None, event.user_id,
                event.anonymous_id, event.type, event.name, time(event.timestamp), received,
                _json(event.properties), _json(event.traits) if event.traits else None, event.points,
                _json_or_null(event.touch),
            )
            for event in batch
        ]
        if self._sqlite or not rows:
            self._executemany(f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 12)})", rows)
            return
        # PostgreSQL: COPY, in the same transaction, is several times faster than INSERT
        statement = f"COPY events ({columns}) FROM STDIN"
        try:
            with self.connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row)
        except psycopg.errors.IntegrityError as error:  # seen by callers as any other write's error
            raise IntegrityError(statement, None, error) from error

    def attach_events(self, batch: Sequence[Event]) -> None:
        """Store the lead and points of events already in the store (tied later, or rescored)."""
        rows = [
            {"_message_id": event.message_id, "lead_id": event.lead.id, "points": event.points}
            for event in batch
            if event.lead is not None
        ]
        if rows:
            statement = update(events).where(events.c.message_id == bindparam("_message_id"))
            self.connection.execute(statement, rows)

    def set_points(self, changed: Sequence[tuple[Event, float]]) -> None:
        """Store new points of events already stored (a rescore), by message id, in one statement."""
        self._executemany("UPDATE events SET points=? WHERE message_id=?",
                          [(points, event.message_id) for event, points in changed])

    def reassign(self, from_lead: int, to_lead: int) -> None:
        """Give every event and identity of one lead to another (a merge)."""
        self.connection.execute(update(events).where(events.c.lead_id == from_lead).values(lead_id=to_lead))
        self.connection.execute(update(identities).where(identities.c.lead_id == from_lead).values(lead_id=to_lead))

    def add_stage_changes(self, changes: Iterable[StageChange]) -> None:
        self._executemany(
            "INSERT INTO stage_changes (lead_id, from_stage, to_stage, at, by, reason) VALUES (?, ?, ?, ?, ?, ?)",
            [(c.lead.id, c.from_stage, c.to_stage, self._time(c.at), c.by, c.reason) for c in changes],
        )



def _group_name(traits: dict[str, Any]) -> str | None:
    name = traits.get("name")
    return name.strip()[:255] or None if isinstance(name, str) else None


def _group_domain(traits: dict[str, Any]) -> str | None:
    """The company domain a group's traits give (`domain`, else the host of `website`)."""
    for key in ("domain", "website"):
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            text = value.strip().lower()
            try:
                host = urlsplit(text if "//" in text else "//" + text).hostname
            except ValueError:
                continue
            if host:
                return host.removeprefix("www.")[:255]
    return None

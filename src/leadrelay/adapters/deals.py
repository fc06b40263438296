"""Every query on deals, their activity, routing state (reps, seats) and follow-up tasks."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, func, insert, or_, select, update

from leadrelay.adapters.repository import LeadRepository, _chunks
from leadrelay.adapters.tables import accounts, clocks, deal_activity, deals, leads, reps, seats, tasks, touches
from leadrelay.domain.deals import Deal
from leadrelay.domain.model import ATTEMPT_KINDS, Lead, Touch
from leadrelay.domain.routing import Seat, Workload
from leadrelay.domain.sla import Clock


ROUTING_LOCK = 0x4C52_0001  # the advisory lock hand-offs take turns on (PostgreSQL)


@dataclass(frozen=True, slots=True)
class DealFilter:
    """What the board and the list of deals can be narrowed by (None: any)."""

    owner: str | None = None
    team: str | None = None
    stage: str | None = None
    source: str | None = None
    lead_id: int | None = None
    open: bool | None = None  # True: open deals only; False: closed only
    teams: frozenset[str] | None = None  # only deals of these teams (or queues)
    score_min: float | None = None  # only leads whose stored total is at least this (decay makes it an upper bound)


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    lead_id: int
    deal_id: int | None
    owner: str | None
    title: str
    due_at: datetime
    created_at: datetime
    done_at: datetime | None
    automation: str | None


@dataclass(frozen=True, slots=True)
class NewTask:
    lead: Lead
    deal: Deal | None
    owner: str | None
    title: str
    due_at: datetime
    automation: str | None


def _deal_values(deal: Deal, now: datetime) -> dict[str, Any]:
    return {
        "lead_id": deal.lead.id, "stage": deal.stage, "team": deal.team, "owner": deal.owner,
        "opened_at": deal.opened_at, "stage_entered_at": deal.stage_entered_at, "assigned_at": deal.assigned_at,
        "closed_at": deal.closed_at, "outcome": deal.outcome, "close_reason": deal.close_reason, "value": deal.value,
        "routed_by": deal.routed_by, "package": deal.package, "updated_at": now,
    }


def _clock(row: Row[Any], deal: Deal) -> Clock:
    return Clock(deal=deal, commitment=row.commitment, measure=row.measure, started_at=row.started_at,
                 due_at=row.due_at, warn_at=row.warn_at, owner=row.owner, status=row.status, ended_at=row.ended_at,
                 warned_at=row.warned_at, id=row.id, dirty=False)


def _deal(row: Row[Any], lead: Lead) -> Deal:
    return Deal(
        id=row.id, lead=lead, stage=row.stage, team=row.team, owner=row.owner, opened_at=row.opened_at,
        stage_entered_at=row.stage_entered_at, routed_by=row.routed_by, package=row.package or {},
        assigned_at=row.assigned_at, closed_at=row.closed_at, outcome=row.outcome, close_reason=row.close_reason,
        value=row.value,
    )


class DealRepository:
    def __init__(self, connection: Connection, leads_repo: LeadRepository) -> None:
        self.connection = connection
        self.leads = leads_repo

    # --- deals -------------------------------------------------------------------------------
    def open_for(self, by_lead: dict[int, Lead], *, lock: bool = False) -> dict[int, Deal]:
        """The open deal of each of these leads (at most one each), tied to the given Lead objects."""
        found: dict[int, Deal] = {}
        for chunk in _chunks(by_lead):
            query = select(deals).where(self.leads._among(deals.c.lead_id, chunk), deals.c.closed_at.is_(None))
            if lock:
                query = query.order_by(deals.c.id).with_for_update()
            for row in self.connection.execute(query):
                found[row.lead_id] = _deal(row, by_lead[row.lead_id])
        return found

    def get(self, deal_id: int, *, lock: bool = False) -> Deal | None:
        """A deal with its lead; with `lock`, both rows locked (the lead first, as every use case
        that moves leads locks them, so two never wait on each other)."""
        query = select(deals).where(deals.c.id == deal_id)
        row = self.connection.execute(query).first()
        if row is None:
            return None
        lead = self.leads.by_ids([row.lead_id], lock=lock)[row.lead_id]
        if lock:
            row = self.connection.execute(query.with_for_update()).one()  # as it is now that we hold it
        return _deal(row, lead)

    def page(self, filters: DealFilter, *, before: int | None, limit: int) -> list[tuple[Deal, dict[str, Any]]]:
        """Deals that match, newest first, each with its account's name and domain."""
        query = (
            select(deals, accounts.c.name.label("account_name"), accounts.c.domain.label("account_domain"))
            .join(leads, leads.c.id == deals.c.lead_id)
            .outerjoin(accounts, accounts.c.id == leads.c.account_id)
        )
        for name, column in (("owner", deals.c.owner), ("team", deals.c.team), ("stage", deals.c.stage),
                             ("source", leads.c.source), ("lead_id", deals.c.lead_id)):
            value = getattr(filters, name)
            if value is not None:
                query = query.where(column == value)
        if filters.open is not None:
            query = query.where(deals.c.closed_at.is_(None) if filters.open else deals.c.closed_at.is_not(None))
        if filters.teams is not None:
            query = query.where(deals.c.team.in_(sorted(filters.teams)))
        if filters.score_min is not None:
            query = query.where(leads.c.fit + leads.c.engagement >= filters.score_min)
        if before is not None:
            query = query.where(deals.c.id < before)
        query = query.order_by(deals.c.id.desc()).limit(limit)
        rows = self.connection.execute(query).all()
        by_id = self.leads.by_ids({row.lead_id for row in rows})
        return [(_deal(row, by_id[row.lead_id]), {"name": row.account_name, "domain": row.account_domain})
                for row in rows]

    def by_ids(self, deal_ids: Collection[int], *, lock: bool = False) -> dict[int, Deal]:
        """Deals with their leads (locked with `lock`: the leads first, then the deals)."""
        rows = self.connection.execute(select(deals).where(deals.c.id.in_(list(deal_ids)))).all()
        by_lead = self.leads.by_ids({row.lead_id for row in rows}, lock=lock)
        if lock:
            rows = self.connection.execute(select(deals).where(deals.c.id.in_(list(deal_ids)))
                                           .order_by(deals.c.id).with_for_update()).all()
        return {row.id: _deal(row, by_lead[row.lead_id]) for row in rows}

    def add(self, new: Sequence[Deal], now: datetime) -> None:
        for deal in new:  # few per batch: a hand-off is rare next to the events that cause it
            deal.id = self.connection.execute(deals.insert().returning(deals.c.id), _deal_values(deal, now)).scalar_one()
            deal.dirty = False

    def save(self, changed: Sequence[Deal], now: datetime) -> None:
        rows = [{"_id": deal.id, **_deal_values(deal, now)} for deal in changed]
        if rows:
            self.connection.execute(update(deals).where(deals.c.id == bindparam("_id")), rows)
        for deal in changed:
            deal.dirty = False

    def add_activity(self, touched: Iterable[Deal]) -> None:
        rows = [
            {"deal_id": deal.id, "action": a.action, "at": a.at, "by": a.by[:200], "from_stage": a.from_stage,
             "to_stage": a.to_stage, "owner": a.owner, "reason": a.reason, "note": a.note, "value": a.value}
            for deal in touched for a in deal.log
        ]
        if rows:
            self.connection.execute(insert(deal_activity), rows)
        for deal in touched:
            deal.log.clear()

    def activity(self, deal_id: int) -> list[dict[str, Any]]:
        query = select(deal_activity).where(deal_activity.c.deal_id == deal_id).order_by(deal_activity.c.id)
        return [dict(row._mapping) for row in self.connection.execute(query)]

    # --- SLA clocks ---------------------------------------------------------------------------
    def running_clocks(self, by_id: dict[int, Deal]) -> dict[int, list[Clock]]:
        """The running clocks of these deals, by deal id."""
        found: dict[int, list[Clock]] = {deal_id: [] for deal_id in by_id}
        for chunk in _chunks(by_id):
            query = select(clocks).where(clocks.c.deal_id.in_(chunk), clocks.c.status == "running").order_by(clocks.c.id)
            for row in self.connection.execute(query):
                found[row.deal_id].append(_clock(row, by_id[row.deal_id]))
        return found

    def due_clock_deals(self, now: datetime, *, limit: int) -> list[int]:
        """Deals with a running clock due now (to breach) or past its warning time (to warn), oldest first:
        two reads of partial indexes, never a scan of every deal."""
        due = (select(clocks.c.deal_id).where(clocks.c.status == "running", clocks.c.due_at <= now)
               .order_by(clocks.c.due_at))
        warn = (select(clocks.c.deal_id).where(clocks.c.status == "running", clocks.c.warned_at.is_(None),
                                               clocks.c.warn_at <= now).order_by(clocks.c.warn_at))
        ids: dict[int, None] = {}
        for query in (due, warn):
            ids.update(dict.fromkeys(self.connection.scalars(query.limit(limit))))
        return list(ids)[:limit]

    def save_clocks(self, changed: Iterable[Clock]) -> None:
        """New clocks inserted (each given its id), changed ones updated in one batch."""
        new, updated = [], []
        for clock in changed:
            if clock.id is None:
                new.append(clock)
            elif clock.dirty:
                updated.append({"_id": clock.id, "owner": clock.owner, "status": clock.status,
                                "ended_at": clock.ended_at, "warned_at": clock.warned_at})
            clock.dirty = False
        if updated:
            self.connection.execute(update(clocks).where(clocks.c.id == bindparam("_id")), updated)
        for clock in new:
            clock.id = self.connection.execute(insert(clocks).returning(clocks.c.id), {
                "deal_id": clock.deal.id, "commitment": clock.commitment, "measure": clock.measure,
                "team": clock.deal.team, "owner": clock.owner, "started_at": clock.started_at, "due_at": clock.due_at,
                "warn_at": clock.warn_at, "status": clock.status, "ended_at": clock.ended_at,
                "warned_at": clock.warned_at}).scalar_one()

    def nearest_clocks(self, deal_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        """Each deal's running clock coming due first (deals without one are left out)."""
        found: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(deal_ids):
            query = (select(clocks).where(clocks.c.deal_id.in_(chunk), clocks.c.status == "running")
                     .order_by(clocks.c.due_at.desc()))
            found.update((row.deal_id, dict(row._mapping)) for row in self.connection.execute(query))
        return found

    def clocks_of(self, *, deal_id: int | None = None, lead_id: int | None = None) -> list[dict[str, Any]]:
        """The clocks of a deal, or of every deal of a lead, oldest first."""
        query = select(clocks).order_by(clocks.c.id)
        if deal_id is not None:
            query = query.where(clocks.c.deal_id == deal_id)
        if lead_id is not None:
            query = query.where(clocks.c.deal_id.in_(select(deals.c.id).where(deals.c.lead_id == lead_id)))
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def attempts(self, deal_id: int) -> int:
        """Touches that count as attempts to reach the lead, logged on this deal."""
        return self.connection.scalar(select(func.count()).select_from(touches).where(
            touches.c.deal_id == deal_id, touches.c.kind.in_(sorted(ATTEMPT_KINDS)))) or 0

    # --- touches ------------------------------------------------------------------------------
    def add_touch(self, deal: Deal, touch: Touch, now: datetime) -> dict[str, Any]:
        values = {"deal_id": deal.id, "lead_id": deal.lead.id, "kind": touch.kind, "at": touch.at, "logged_at": now,
                  "by": touch.by, "outcome": touch.outcome, "note": touch.note}
        return dict(self.connection.execute(insert(touches).returning(*touches.c), values).one()._mapping)

    def touches(self, deal_id: int, *, before: int | None, limit: int) -> list[dict[str, Any]]:
        """A deal's touches, the last logged first."""
        query = select(touches).where(touches.c.deal_id == deal_id)
        if before is not None:
            query = query.where(touches.c.id < before)
        rows = self.connection.execute(query.order_by(touches.c.id.desc()).limit(limit))
        return [dict(row._mapping) for row in rows]

    # --- routing state ----------------------------------------------------------------------
    def workload(self, emails: Collection[str], period_start: datetime) -> dict[str, Workload]:
        """Each rep's open deals, and the deals given to them since `period_start`."""
        found = {email: Workload() for email in emails}
        if not found:
            return found
        open_query = (select(deals.c.owner, func.count())
                      .where(deals.c.owner.in_(list(found)), deals.c.closed_at.is_(None)).group_by(deals.c.owner))
        for owner, count in self.connection.execute(open_query):
            found[owner].open_deals = count
        new_query = (select(deals.c.owner, func.count())
                     .where(deals.c.owner.in_(list(found)), deals.c.assigned_at >= period_start).group_by(deals.c.owner))
        for owner, count in self.connection.execute(new_query):
            found[owner].new_deals = count
        return found

    def seats(self, teams: Collection[str], *, lock: bool = False) -> dict[tuple[str, str], Seat]:
        """Every rep's place in these teams' rotations. With `lock`, hand-offs take turns until
        commit (a transaction-scoped advisory lock on PostgreSQL, since seats not yet written
        cannot be row-locked; SQLite's writer holds the database already)."""
        if lock and self.connection.dialect.name == "postgresql":
            self.connection.execute(select(func.pg_advisory_xact_lock(ROUTING_LOCK)))
        query = select(seats).where(seats.c.team.in_(list(teams))).order_by(seats.c.id)
        rows = self.connection.execute(query)
        return {(row.team, row.email): Seat(row.team, row.email, row.last_turn, row.assigned, row.last_assigned_at)
                for row in rows}

    def save_seats(self, changed: Iterable[Seat]) -> None:
        for seat in changed:
            values = {"last_turn": seat.last_turn, "assigned": seat.assigned, "last_assigned_at": seat.last_assigned_at}
            updated = self.connection.execute(
                update(seats).where(seats.c.team == seat.team, seats.c.email == seat.email).values(values))
            if not updated.rowcount:
                self.connection.execute(insert(seats).values(team=seat.team, email=seat.email, **values))
            seat.dirty = False

    def away(self, now: datetime) -> set[str]:
        """Reps who get no new leads now: out of office, or inactive."""
        query = select(reps.c.email).where(or_(reps.c.inactive.is_(True), reps.c.away_until > now))
        return set(self.connection.scalars(query))

    def reps(self) -> dict[str, dict[str, Any]]:
        return {row.email: dict(row._mapping) for row in self.connection.execute(select(reps))}

    def set_rep(self, email: str, *, away_until: datetime | None, inactive: bool, note: str | None,
                now: datetime) -> None:
        values = {"away_until": away_until, "inactive": inactive, "note": note, "updated_at": now}
        updated = self.connection.execute(update(reps).where(reps.c.email == email).values(values))
        if not updated.rowcount:
            self.connection.execute(insert(reps).values(email=email, **values))

    def accounts_of(self, account_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        """What routing rules read of each account."""
        found: dict[int, dict[str, Any]] = {}
        for chunk in _chunks(account_ids):
            query = select(accounts.c.id, accounts.c.domain, accounts.c.name, accounts.c.is_target, accounts.c.owner,
                           accounts.c.traits).where(accounts.c.id.in_(chunk))
            for row in self.connection.execute(query):
                found[row.id] = {**row._mapping, "traits": row.traits or {}}
        return found

    # --- tasks -------------------------------------------------------------------------------
    def add_tasks(self, new: Sequence[NewTask], now: datetime) -> None:
        rows = [{"lead_id": t.lead.id, "deal_id": t.deal.id if t.deal else None, "owner": t.owner, "title": t.title,
                 "due_at": t.due_at, "created_at": now, "automation": t.automation} for t in new]
        if rows:
            self.connection.execute(insert(tasks), rows)

    def tasks(self, *, owner: str | None, lead_id: int | None, open_only: bool, before: int | None,
              limit: int) -> list[Task]:
        query = select(tasks)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        if lead_id is not None:
            query = query.where(tasks.c.lead_id == lead_id)
        if open_only:
            query = query.where(tasks.c.done_at.is_(None))
        if before is not None:
            query = query.where(tasks.c.id < before)
        rows = self.connection.execute(query.order_by(tasks.c.id.desc()).limit(limit))
        return [Task(**row._mapping) for row in rows]

    def complete_task(self, task_id: int, now: datetime) -> bool:
        result = self.connection.execute(
            update(tasks).where(and_(tasks.c.id == task_id, tasks.c.done_at.is_(None))).values(done_at=now))
        return bool(result.rowcount) or self.connection.scalar(select(tasks.c.id).where(tasks.c.id == task_id)) is not None

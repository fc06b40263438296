"""What the health endpoints read from the store: whether it answers and is migrated to the newest
schema, and the counts that are true across every process sharing it (for `/metrics`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select, text

from leadrelay.adapters.database import alembic_config
from leadrelay.adapters.tables import clocks, deals, events, leads, outbox


@lru_cache(maxsize=1)
def _head_revisions() -> tuple[str, ...]:
    """The newest revision(s) of the migrations shipped with this version of LeadRelay."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config(None)).get_heads()))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    database: tuple[str, ...] = ()  # the revision(s) the database is at
    code: tuple[str, ...] = ()  # the revision(s) this code expects


def readiness(engine: Engine) -> Readiness:
    """The database answers, and its schema is at the head of this code's migrations."""
    expected = _head_revisions()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    except Exception as error:  # noqa: BLE001 - any failure to reach the store means not ready
        problem = str(getattr(error, "orig", None) or error).strip().splitlines()
        return Readiness(False, f"the database cannot be reached: {problem[0] if problem else type(error).__name__}",
                         code=expected)
    if current != expected:
        where = ", ".join(current) or "no schema"
        return Readiness(False, f"the database is at revision {where}, this version needs {', '.join(expected)}: "
                                "run `leadrelay migrate`", current, expected)
    return Readiness(True, "ready", current, expected)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """Counts read from the database at one moment: the same whichever process serves them."""

    events_last_id: int  # the highest event id: grows by one per stored event (rolled-back batches leave gaps)
    leads: int
    hand_offs: int  # deals opened
    open_deals: int
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> items, pending and dead
    outbox_due: int = 0  # pending items whose time has come
    outbox_oldest_due_seconds: float = 0.0  # how long the oldest due item has waited
    clocks_overdue: int = 0  # running clocks past their due time, not yet breached by the sweep
    clock_lag_seconds: float = 0.0  # how far past its due time the most overdue running clock is
    warnings_overdue: int = 0  # running clocks past their warning time, not yet warned


def store_figures(connection: Connection, now: datetime) -> StoreFigures:
    """Each figure is one indexed query (no scan of the events or of delivered outbox items)."""
    outbox_counts: dict[tuple[str, str], int] = {}
    for status in ("pending", "dead"):
        query = select(outbox.c.kind, func.count()).where(outbox.c.status == status).group_by(outbox.c.kind)
        for kind, count in connection.execute(query):
            outbox_counts[(kind, status)] = count
    due = connection.execute(
        select(func.count(), func.min(outbox.c.next_attempt_at))
        .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now)
    ).one()
    overdue = connection.execute(
        select(func.count(), func.min(clocks.c.due_at)).where(clocks.c.status == "running", clocks.c.due_at <= now)
    ).one()
    warnings = connection.scalar(
        select(func.count()).select_from(clocks)
        .where(clocks.c.status == "running", clocks.c.warned_at.is_(None), clocks.c.warn_at <= now)
    ) or 0
    return StoreFigures(
        events_last_id=connection.scalar(select(func.max(events.c.id))) or 0,
        leads=connection.scalar(select(func.count()).select_from(leads).where(leads.c.merged_into.is_(None))) or 0,
        hand_offs=connection.scalar(select(func.count()).select_from(deals)) or 0,
        open_deals=connection.scalar(select(func.count()).select_from(deals).where(deals.c.closed_at.is_(None))) or 0,
        outbox=outbox_counts,
        outbox_due=due[0] or 0,
        outbox_oldest_due_seconds=_seconds_since(due[1], now),
        clocks_overdue=overdue[0] or 0,
        clock_lag_seconds=_seconds_since(overdue[1], now),
        warnings_overdue=warnings,
    )


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:  # SQLite's aggregate gives the stored text back, without its type
        from leadrelay.domain.clock import UTC

        moment = moment.replace(tzinfo=UTC)
    return max((now - moment).total_seconds(), 0.0)

"""The tables the reports read, derived from the stage history, deals and events.

- `stage_spans`: the stage history as stays (entered, left, how long, where to next, why);
- `stage_reached`: when each lead first reached each funnel stage (a skipped stage counts as
  reached when it was skipped), so "entered a stage in a period" is one index range;
- `lead_facts`: one narrow row per lead with what the funnel groups by (source, medium, campaign,
  segment, team, rep) and counts (stage, highest stage, outcome, value, cycle time);
- `attribution`: each outcome's credit to the channels of the lead's touchpoints, per model;
- `lead_content`: the content each won or lost lead consumed before it closed.

`refresh` keeps them up to date. It reads the rows added since its last run to the append-only
sources (stage changes, deal activity, and the events that can change a lead's facts: identify,
alias, traits, campaign touches, content of closed leads), recomputes the leads they concern, and
notes how far it has read. Merged leads lose their rows. A playbook whose funnel differs from the
one the tables were built with, or tables never built, are built again from every lead, a chunk
per transaction (so writers are never held up for long, and a build cut short goes on where it
stopped). On PostgreSQL a row may become visible after rows with higher ids (transactions commit
in any order): the ids skipped by a refresh are noted and read again until they appear or an hour
has passed.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from leadrelay.adapters.content import CONTENT_EVENTS, content_key
from leadrelay.adapters.tables import (
    analytics_state,
    attribution,
    deal_activity,
    deals,
    events,
    lead_content,
    lead_facts,
    leads,
    stage_changes,
    stage_reached,
    stage_spans,
)
from leadrelay.domain.clock import UTC
from leadrelay.domain.playbook import Playbook
from leadrelay.reports.attribution import Touchpoint, credit

ANALYTICS_LOCK = 0x4C52_0007  # the advisory lock refreshes take turns on (PostgreSQL)
STATE = "state"
CHUNK = 2000  # leads recomputed per statement batch (and per transaction while building)
HOLE_TTL = timedelta(hours=1)  # an id not visible after this long was rolled back
HOLE_WINDOW = 10_000  # at a build, the ids below the newest that are looked at for holes
MAX_HOLES = 500
DERIVED = (lead_facts, stage_spans, stage_reached, attribution, lead_content)
IDENTIFYING_TYPES = ("identify", "alias")
OUTCOMES = ("lead", "mql", "sql", "won")


def segment_of(company_size: Any) -> str | None:
    """The company-size band: SMB (under 100 employees), mid-market (100–999), enterprise (1,000+)."""
    if isinstance(company_size, bool) or not isinstance(company_size, (int, float)):
        return None
    if company_size < 100:
        return "SMB"
    return "mid-market" if company_size < 1000 else "enterprise"


@dataclass(frozen=True)
class Funnel:
    """What the derived tables depend on in the playbook: the funnel's stages and ranks, and the
    stages that mark the outcomes attribution credits (lead, MQL, SQL, won)."""

    ranks: dict[str, int]  # funnel stage -> rank
    entry: str
    mql: str
    sql: str | None  # the funnel stage after the one accepting a hand-off
    opportunity: str | None  # the funnel stage just before the won stage
    won: str | None
    side: tuple[str, ...]  # stages off the funnel (recycled, lost, disqualified, ...)

    @classmethod
    def of(cls, playbook: Playbook) -> Funnel:
        ranks = {stage.id: stage.rank for stage in playbook.stages.values() if stage.rank is not None}
        by_rank = sorted(ranks, key=ranks.__getitem__)
        accept_rank = playbook.rank(playbook.accept_stage)
        sql = next((stage for stage in by_rank if ranks[stage] > accept_rank), None) \
            if playbook.accept_stage != playbook.mql_stage else None
        won_stages = [stage.id for stage in playbook.stages.values() if stage.outcome == "won"]
        won = next((stage for stage in won_stages if stage in ranks), won_stages[0] if won_stages else None)
        opportunity = None
        if won in ranks:
            below = [stage for stage in by_rank if ranks[stage] < ranks[won]]
            opportunity = below[-1] if below and below[-1] not in (playbook.entry_stage, playbook.mql_stage) else None
        side = tuple(stage.id for stage in playbook.stages.values() if stage.rank is None)
        return cls(ranks, playbook.entry_stage, playbook.mql_stage, sql, opportunity, won, side)

    @property
    def ordered(self) -> list[str]:
        return sorted(self.ranks, key=self.ranks.__getitem__)

    @property
    def signature(self) -> str:
        return json.dumps([sorted(self.ranks.items()), self.entry, self.mql, self.sql, self.opportunity, self.won],
                          separators=(",", ":"))

    def outcome_stages(self) -> dict[str, str]:
        """outcome name -> the funnel stage whose reaching is that outcome."""
        found = {"lead": self.entry, "mql": self.mql}
        if self.sql is not None:
            found["sql"] = self.sql
        if self.won is not None:
            found["won"] = self.won
        return found


@dataclass
class Refreshed:
    leads: int = 0  # leads whose rows were recomputed
    built: bool = False  # the tables were built from every lead
    seconds: float = 0.0


# --- the sources read since the last refresh ----------------------------------------------


@dataclass
class _Feed:
    name: str
    table: Table

    def lead_ids(self, connection: Connection, condition: ColumnElement[bool]) -> set[int]:
        if self.table is deal_activity:
            query = (select(deals.c.lead_id).select_from(deal_activity.join(deals, deals.c.id == deal_activity.c.deal_id))
                     .where(condition).distinct())
        elif self.table is events:
            relevant = or_(events.c.touch.is_not(None), events.c.traits.is_not(None),
                           events.c.type.in_(IDENTIFYING_TYPES),
                           and_(events.c.name.in_(sorted(CONTENT_EVENTS)),
                                events.c.lead_id.in_(select(lead_facts.c.lead_id).where(lead_facts.c.outcome.is_not(None)))))
            query = select(events.c.lead_id).where(condition, events.c.lead_id.is_not(None), relevant).distinct()
        else:
            query = select(self.table.c.lead_id).where(condition).distinct()
        return set(connection.scalars(query))


FEEDS = (_Feed("stage_changes", stage_changes), _Feed("deal_activity", deal_activity), _Feed("events", events))


def _unread(table: Table, last: int, holes: Sequence[Sequence[Any]]) -> ColumnElement[bool]:
    """Rows added after `last`, or in the holes noted before."""
    return or_(table.c.id > last, *(table.c.id.between(low, high) for low, high, _ in holes))


def _gaps(connection: Connection, table: Table, after: int, upto: int) -> list[tuple[int, int]]:
    """The ids in (after, upto] that no visible row has (PostgreSQL: being written, or rolled back)."""
    if upto <= after:
        return []
    rows = select(table.c.id, func.lag(table.c.id).over(order_by=table.c.id).label("prev")).where(
        table.c.id > after, table.c.id <= upto).subquery()
    found = [(prev + 1, current - 1) for prev, current in connection.execute(
        select(rows.c.prev, rows.c.id).where(rows.c.id - rows.c.prev > 1))]
    first = connection.scalar(select(func.min(table.c.id)).where(table.c.id > after, table.c.id <= upto))
    if first is None:
        return [(after + 1, upto)]
    if first > after + 1:
        found.append((after + 1, first - 1))
    return sorted(found)


# --- state ------------------------------------------------------------------------------


def _read_state(connection: Connection) -> dict[str, Any] | None:
    value = connection.scalar(select(analytics_state.c.value).where(analytics_state.c.name == STATE))
    return dict(value) if value else None


def _write_state(connection: Connection, state: dict[str, Any], now: datetime) -> None:
    done = connection.execute(update(analytics_state).where(analytics_state.c.name == STATE)
                              .values(value=state, updated_at=now))
    if not done.rowcount:
        connection.execute(insert(analytics_state).values(name=STATE, value=state, updated_at=now))


def _merged_with_facts(connection: Connection, limit: int | None = None) -> list[tuple[int, int]]:
    """Leads merged away that still have their facts: (lead, the lead it was merged into)."""
    query = (select(leads.c.id, leads.c.merged_into).join(lead_facts, lead_facts.c.lead_id == leads.c.id)
             .where(leads.c.merged_into.is_not(None)))
    if limit is not None:
        query = query.limit(limit)
    return [(row.id, row.merged_into) for row in connection.execute(query)]


def pending(connection: Connection, playbook: Playbook) -> bool:
    """Whether `refresh` has anything to do (a few index reads; writes nothing)."""
    state = _read_state(connection)
    if state is None or not state.get("built") or state.get("signature") != Funnel.of(playbook).signature:
        return True
    for feed in FEEDS:
        mark = state["feeds"][feed.name]
        newest = connection.scalar(select(func.max(feed.table.c.id))) or 0
        if newest > mark["last"]:
            return True
        if mark["holes"] and connection.scalar(
                select(feed.table.c.id).where(_unread(feed.table, mark["last"], mark["holes"])).limit(1)) is not None:
            return True
    return bool(_merged_with_facts(connection, limit=1))


# --- refresh ------------------------------------------------------------------------------


@contextmanager
def _turn(engine: Engine) -> Iterator[Connection]:
    """A write transaction that only one refresh at a time holds: SQLite's write lock (BEGIN
    IMMEDIATE); on PostgreSQL an advisory lock taken first, then a REPEATABLE READ transaction,
    so that every read of the refresh sees the same committed rows."""
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.execute(select(func.pg_advisory_lock(ANALYTICS_LOCK)))
            connection.commit()
            connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            with connection.begin():
                yield connection
        finally:
            if postgres:
                connection.execution_options(isolation_level="READ COMMITTED")
                connection.execute(select(func.pg_advisory_unlock(ANALYTICS_LOCK)))
                connection.commit()


def refresh(engine: Engine, playbook: Playbook, now: datetime, *,
            progress: Callable[[int, int], None] | None = None) -> Refreshed:
    """Bring the derived tables up to date with everything committed; what was done.
    `progress(done, total)` is told how far a build has come."""
    started = time.perf_counter()
    result = Refreshed()
    with engine.connect() as connection:
        connection.execution_options(read_only=True)
        with connection.begin():
            if not pending(connection, playbook):
                return result
    funnel = Funnel.of(playbook)
    while True:
        with _turn(engine) as connection:
            state = _read_state(connection)
            if state is None or state.get("signature") != funnel.signature:
                state = _start_build(connection, funnel, now)
                result.built = True
            if not state["built"]:
                result.leads += _build_step(connection, funnel, state, now, progress)
                result.built = True
                continue
            result.leads += _catch_up(connection, funnel, state, now)
            break
    result.seconds = time.perf_counter() - started
    return result


def _start_build(connection: Connection, funnel: Funnel, now: datetime) -> dict[str, Any]:
    """Empty the derived tables and note where each source stands: what comes after is caught up
    once the build is done."""
    for table in DERIVED:
        connection.execute(delete(table))
    postgres = connection.dialect.name == "postgresql"
    feeds = {}
    for feed in FEEDS:
        newest = connection.scalar(select(func.max(feed.table.c.id))) or 0
        holes = _gaps(connection, feed.table, max(newest - HOLE_WINDOW, 0), newest) if postgres else []
        feeds[feed.name] = {"last": newest, "holes": [[low, high, now.isoformat()] for low, high in holes][-MAX_HOLES:]}
    total = connection.scalar(select(func.count()).select_from(leads)) or 0
    state = {"signature": funnel.signature, "built": False, "next_lead": 0, "total": total, "done": 0, "feeds": feeds}
    _write_state(connection, state, now)
    return state


def _build_step(connection: Connection, funnel: Funnel, state: dict[str, Any], now: datetime,
                progress: Callable[[int, int], None] | None) -> int:
    ids = list(connection.scalars(select(leads.c.id).where(leads.c.id > state["next_lead"])
                                  .order_by(leads.c.id).limit(CHUNK)))
    if ids:
        _recompute(connection, funnel, ids, fresh=True)
        state["next_lead"], state["done"] = ids[-1], state.get("done", 0) + len(ids)
    else:
        state["built"] = True
        for table in DERIVED:  # the planner learns the tables' new sizes (they were empty)
            connection.exec_driver_sql(f"ANALYZE {table.name}")
    _write_state(connection, state, now)
    if progress is not None:
        progress(state["done"], max(state.get("total", 0), state["done"]))
    return len(ids)


def _catch_up(connection: Connection, funnel: Funnel, state: dict[str, Any], now: datetime) -> int:
    """Recompute the leads the rows added since the last refresh concern; note how far we read."""
    postgres = connection.dialect.name == "postgresql"
    dirty: set[int] = set()
    for feed in FEEDS:
        mark = state["feeds"][feed.name]
        last, holes = mark["last"], mark["holes"]
        newest = connection.scalar(select(func.max(feed.table.c.id))) or 0
        if newest <= last and not holes:
            continue
        dirty |= feed.lead_ids(connection, _unread(feed.table, last, holes))
        if postgres:
            seen = set(connection.scalars(select(feed.table.c.id).where(
                or_(*(feed.table.c.id.between(low, high) for low, high, _ in holes))))) if holes else set()
            kept = []
            for low, high, noted in holes:
                if now - datetime.fromisoformat(noted) > HOLE_TTL:
                    continue
                kept.extend([lo, hi, noted] for lo, hi in _split(low, high, seen))
            kept.extend([low, high, now.isoformat()] for low, high in _gaps(connection, feed.table, last, newest))
            mark["holes"] = kept[-MAX_HOLES:]
        mark["last"] = max(last, newest)
    merged = _merged_with_facts(connection)
    if merged:
        _delete(connection, [lead_id for lead_id, _ in merged])
        dirty |= {target for _, target in merged}
    dirty.difference_update(lead_id for lead_id, _ in merged)
    ordered = sorted(dirty)
    for start in range(0, len(ordered), CHUNK):
        _recompute(connection, funnel, ordered[start:start + CHUNK], fresh=False)
    state["refreshed_at"] = now.isoformat()
    _write_state(connection, state, now)
    return len(ordered)


def _split(low: int, high: int, seen: set[int]) -> list[tuple[int, int]]:
    """The parts of [low, high] whose ids were not seen."""
    parts, start = [], low
    for row_id in sorted(i for i in seen if low <= i <= high):
        if row_id > start:
            parts.append((start, row_id - 1))
        start = row_id + 1
    if start <= high:
        parts.append((start, high))
    return parts


# --- recomputing a batch of leads ---------------------------------------------------------


def _among(connection: Connection, column: ColumnElement[Any], values: list[int]) -> ColumnElement[bool]:
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger())))
    return column.in_(values)


def _delete(connection: Connection, lead_ids: list[int]) -> None:
    for table in DERIVED:
        connection.execute(delete(table).where(_among(connection, table.c.lead_id, lead_ids)))


def _sqlite_value(value: Any) -> Any:
    """A time as SQLite keeps it: naive UTC text."""
    if isinstance(value, datetime):
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:26]
    return value


def _insert(connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Many rows at once, straight to the driver (executemany on SQLite, COPY on PostgreSQL)."""
    if not rows:
        return
    names = ", ".join(f'"{name}"' for name in columns)
    if connection.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                                   [tuple(_sqlite_value(v) for v in row) for row in rows])
        return
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _cut(value: Any, length: int) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:length] or None


FACT_COLUMNS = ("lead_id", "created_at", "source", "medium", "campaign", "segment", "team", "rep", "stage",
                "highest_stage", "handed_off_at", "outcome", "closed_at", "value", "cycle_seconds")
SPAN_COLUMNS = ("lead_id", "stage", "entered_at", "left_at", "seconds", "next_stage", "reason", "lead_created_at")
REACHED_COLUMNS = ("lead_id", "stage", "at")
CREDIT_COLUMNS = ("lead_id", "outcome", "at", "source", "medium", "campaign", "first_share", "last_share",
                  "linear_share", "w_shaped_share", "value")
CONTENT_COLUMNS = ("lead_id", "kind", "key", "first_at", "times")


def _recompute(connection: Connection, funnel: Funnel, lead_ids: list[int], *, fresh: bool) -> None:
    """Delete and write again every derived row of these leads (`fresh`: they have none yet)."""
    if not fresh:
        _delete(connection, lead_ids)
    among = _among(connection, leads.c.id, lead_ids)
    rows = connection.execute(select(
        leads.c.id, leads.c.created_at, leads.c.stage, leads.c.highest_stage, leads.c.source, leads.c.first_touch,
        leads.c.fields["company_size"].label("company_size"), leads.c.merged_into).where(among)).all()
    live = [row for row in rows if row.merged_into is None]
    if not live:
        return
    ids = [row.id for row in live]
    history = _grouped(connection.execute(
        select(stage_changes.c.lead_id, stage_changes.c.to_stage, stage_changes.c.at, stage_changes.c.reason)
        .where(_among(connection, stage_changes.c.lead_id, ids))
        .order_by(stage_changes.c.lead_id, stage_changes.c.at, stage_changes.c.id)))
    their_deals = _grouped(connection.execute(
        select(deals.c.lead_id, deals.c.team, deals.c.owner, deals.c.opened_at, deals.c.closed_at, deals.c.outcome,
               deals.c.value).where(_among(connection, deals.c.lead_id, ids)).order_by(deals.c.lead_id, deals.c.id)))
    touched = _grouped(connection.execute(
        select(events.c.lead_id, events.c.timestamp, events.c.touch)
        .where(_among(connection, events.c.lead_id, ids), events.c.lead_id.is_not(None), events.c.touch.is_not(None))
        .order_by(events.c.lead_id, events.c.timestamp, events.c.id)))

    facts, spans, reached_rows, credits = [], [], [], []
    closed: dict[int, datetime] = {}
    for lead in live:
        changes = history.get(lead.id, [])
        reached = _reached(funnel, lead.created_at, changes)
        for index, change in enumerate(changes):
            following = changes[index + 1] if index + 1 < len(changes) else None
            spans.append((lead.id, change.to_stage, change.at, following.at if following else None,
                          (following.at - change.at).total_seconds() if following else None,
                          following.to_stage if following else None, following.reason if following else None,
                          lead.created_at))
        reached_rows.extend((lead.id, stage, at) for stage, at in reached.items())
        mine = their_deals.get(lead.id, [])
        latest = mine[-1] if mine else None
        won_at = reached.get(funnel.won) if funnel.won else None
        outcome, closed_at, value = None, None, None
        if won_at is not None:
            won = [deal for deal in mine if deal.outcome == "won"]
            outcome, closed_at, value = "won", won_at, (won[-1].value if won else None)
        elif latest is not None and latest.outcome == "lost":
            outcome, closed_at = "lost", latest.closed_at
        if closed_at is not None:
            closed[lead.id] = closed_at
        first_touch = lead.first_touch if isinstance(lead.first_touch, dict) else {}
        facts.append((
            lead.id, lead.created_at, _cut(lead.source, 200), _cut(first_touch.get("medium"), 200),
            _cut(first_touch.get("campaign"), 500), segment_of(lead.company_size),
            latest.team if latest else None, latest.owner if latest else None, lead.stage, lead.highest_stage,
            mine[0].opened_at if mine else None, outcome, closed_at, value,
            (won_at - lead.created_at).total_seconds() if won_at is not None else None,
        ))
        credits.extend(_credits(funnel, lead, reached, touched.get(lead.id, []), value))

    _insert(connection, lead_facts, FACT_COLUMNS, facts)
    _insert(connection, stage_spans, SPAN_COLUMNS, spans)
    _insert(connection, stage_reached, REACHED_COLUMNS, reached_rows)
    _insert(connection, attribution, CREDIT_COLUMNS, credits)
    if closed:
        _insert(connection, lead_content, CONTENT_COLUMNS, _content(connection, closed))


def _grouped(rows: Iterable[Any]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        found[row.lead_id].append(row)
    return found


def _reached(funnel: Funnel, created_at: datetime, changes: Sequence[Any]) -> dict[str, datetime]:
    """When the lead first reached each funnel stage; the stages a move skipped, at that move."""
    ranks, ordered = funnel.ranks, funnel.ordered
    reached: dict[str, datetime] = {}
    best = -1
    if funnel.entry in ranks:
        reached[funnel.entry] = created_at
        best = ranks[funnel.entry]
    for change in changes:
        rank = ranks.get(change.to_stage)
        if rank is None or rank <= best:
            continue
        for stage in ordered:
            if best < ranks[stage] <= rank:
                reached[stage] = change.at
        best = rank
    return reached


def _credits(funnel: Funnel, lead: Any, reached: dict[str, datetime], touched: Sequence[Any],
             value: float | None) -> list[tuple[Any, ...]]:
    points = [Touchpoint(row.timestamp, _cut(row.touch.get("source"), 200), _cut(row.touch.get("medium"), 200),
                         _cut(row.touch.get("campaign"), 500))
              for row in touched if isinstance(row.touch, dict)]
    fallback = Touchpoint(lead.created_at, _cut(lead.source, 200))
    opportunity_at = reached.get(funnel.opportunity) if funnel.opportunity else None
    rows = []
    for outcome, stage in funnel.outcome_stages().items():
        at = reached.get(stage)
        if at is None:
            continue
        for share in credit(points, fallback, at, created_at=lead.created_at, opportunity_at=opportunity_at):
            rows.append((lead.id, outcome, at, *share.channel, share.first_touch, share.last_touch, share.linear,
                         share.w_shaped, value if outcome == "won" else None))
    return rows


def _content(connection: Connection, closed: dict[int, datetime]) -> list[tuple[Any, ...]]:
    """What each closed lead consumed before it closed: (kind, key), first time and how often."""
    found: dict[tuple[int, str, str], list[Any]] = {}
    query = (select(events.c.lead_id, events.c.name, events.c.timestamp, events.c.properties)
             .where(_among(connection, events.c.lead_id, sorted(closed)), events.c.lead_id.is_not(None),
                    events.c.name.in_(sorted(CONTENT_EVENTS))))
    for row in connection.execute(query):
        if row.timestamp > closed[row.lead_id]:
            continue
        key = content_key(row.name, row.properties)
        if key is None:
            continue
        entry = found.setdefault((row.lead_id, *key), [row.timestamp, 0])
        entry[0] = min(entry[0], row.timestamp)
        entry[1] += 1
    return [(lead_id, kind, key, first, times) for (lead_id, kind, key), (first, times) in found.items()]

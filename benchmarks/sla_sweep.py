"""The SLA sweep: how long the worker's check of due clocks takes with 100,000 open deals, beside
the raw limit of the store. Target: one sweep <= 200 ms on SQLite and on PostgreSQL.

    python benchmarks/sla_sweep.py                         # 100,000 open deals on SQLite
    python benchmarks/sla_sweep.py --database both         # SQLite, then PostgreSQL
    python benchmarks/sla_sweep.py --quick                 # 10,000 open deals: a smoke run
    python benchmarks/sla_sweep.py --profile               # and cProfile a sweep that fires clocks

Setup (not measured): a fresh database (a file for SQLite; a new PostgreSQL database, dropped
afterwards), migrated like any LeadRelay database, then filled in bulk through the driver
(`executemany` on SQLite, `COPY` on PostgreSQL) with N open deals, each with its lead and the
clocks of the built-in default playbook's commitments: three running clocks a deal (deals in
`mql` and `sal`: answer the hand-off, first touch, keep trying; deals in `sql`: first touch,
keep trying, no idle SQLs), plus the met answer clock of every deal past `mql`. Deals belong to
the playbook's teams (half EMEA, 3 in 10 the Americas, 1 in 5 APAC, 1 in 100 in the unassigned
queue) and are owned by their reps. Due times are spread over the next four weeks. At the
benchmark's "now" nothing is due (the worker has just run). In the hour after it, --due-share of
the running clocks (default 1 %) come to their warning or their due time (about 6 in 10
warnings, 4 in 10 breaches), and as many again, made the same way, in the hour after that. On
PostgreSQL the database is then vacuumed and analysed (as autovacuum would do; --no-analyze
leaves it without statistics or visibility map). Nothing else runs against the database.

Measured, with LeadRelay's own code (`leadrelay.services.sla.sweep`, the built-in default
playbook, limit 500 deals a sweep, as the worker calls it every round):

  idle sweep       at "now": nothing is due, the common case (the worker checks every second).
                   One warm-up, then --runs sweeps; the median (p50) and the slowest.
  sweep with K due an hour later: each sweep reads up to 500 deals with a clock due or past its
                   warning (those due first, then those to warn), locks them and fires their
                   clocks: `sla_warning`/`sla_breach` automations (none in the default playbook),
                   webhooks (no subscriptions), the manager's email to the outbox on a breach of
                   "answer the hand-off" and "first touch", and for "first touch" a reassignment
                   by the routing rules (the new owner's email to the outbox, the clock started
                   again). Sweeps one after another until nothing is due, as a worker catching
                   up: each one's time and clocks fired (K), the median and the slowest.
  where the time goes  two hours later, the second hour's clocks are swept the same way, timed
                   part by part (finding the deals, locking and loading them, reading their
                   clocks, firing, commit) and every SQL statement by kind; not counted above.

Beside them, in the same run, through the driver alone (sqlite3 / psycopg, no LeadRelay code):

  raw index read   the two bare index reads the sweep starts with, e.g.
                   SELECT deal_id FROM clocks WHERE status = 'running' AND due_at <= ?
                   ORDER BY due_at LIMIT 500 (and the same for warn_at with warned_at IS NULL),
                   at "now" (nothing found) and an hour later (500 + 500 rows); the median.
  raw write        what writing a sweep's clocks costs: 500 of the clocks due or to warn an hour
                   later (those due first, as the sweep takes them) marked breached or warned by
                   one `executemany` UPDATE, timed before its commit and rolled back; the median
                   of 3.
  full scan        what the partial indexes avoid: the count of the same clocks with every index
                   forbidden (SQLite `NOT INDEXED`; PostgreSQL with index and bitmap scans turned
                   off), that is, reading every clock; the median of a few.

It also prints the plan of the two due-clock queries exactly as the sweep sends them (captured
from the sweep, then `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL), to show the
partial indexes `ix_clocks_running_due_at` and `ix_clocks_running_warn_at` are used. At the end
each store is checked: every clock fired is stored as warned or breached, and the outbox holds
the emails of the breaches.

PostgreSQL: LEADRELAY_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test (a new
database is created beside it, and dropped afterwards). The exit status is 0 when the checks
passed (targets met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Engine, event, text

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.clock import UTC, utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services import sla as sla_service
from leadrelay.services.sla import sweep
from leadrelay.services.unit_of_work import UnitOfWork

POSTGRES_URL = os.environ.get("LEADRELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET = 0.200  # seconds: one sweep
LIMIT = 500  # deals a sweep, as the worker calls it
AHEAD = timedelta(hours=1)  # each window of clocks coming due: the hour after "now", and the hour after that
WINDOWS = 2  # the first is measured; the second, made the same way, is timed part by part
CONNECT_TIMEOUT = 10  # seconds
STATEMENT_TIMEOUT_MS = 300_000  # any one statement of the setup or of the raw reads

# Countries that the default playbook's routing rules send to each team; "ZA" matches no rule.
COUNTRIES = {"emea": ("GB", "DE", "FR", "NL", "SE"), "americas": ("US", "CA", "BR"), "apac": ("AU", "JP", "SG"),
             "unassigned": ("ZA",)}
TEAM_SHARES = (("emea", 0.50), ("americas", 0.29), ("apac", 0.20), ("unassigned", 0.01))
STAGES = (("mql", 0.25), ("sal", 0.40), ("sql", 0.35))
INDUSTRIES = ("software", "fintech", "healthcare", "manufacturing", "retail")
TITLES = ("VP Marketing", "Head of Growth", "Director of Sales", "Founder", "Marketing Manager")


# --- the data ---------------------------------------------------------------------------------


@dataclass
class Rows:
    """What the setup inserts; times are aware datetimes (converted per store)."""

    leads: list[tuple[Any, ...]] = field(default_factory=list)
    deals: list[tuple[Any, ...]] = field(default_factory=list)
    clocks: list[tuple[Any, ...]] = field(default_factory=list)
    running: int = 0
    due_breach: list[int] = field(default_factory=lambda: [0] * WINDOWS)  # clocks coming due in each window
    due_warning: list[int] = field(default_factory=lambda: [0] * WINDOWS)  # clocks coming to their warning


LEAD_COLUMNS = ("id", "email", "stage", "highest_stage", "stage_entered_at", "created_at", "updated_at", "fields",
                "fit", "fit_breakdown", "engagement", "engagement_as_of", "engagement_rules", "owner", "source")
DEAL_COLUMNS = ("id", "lead_id", "stage", "team", "owner", "opened_at", "stage_entered_at", "assigned_at",
                "routed_by", "package", "updated_at")
CLOCK_COLUMNS = ("id", "deal_id", "commitment", "measure", "team", "owner", "started_at", "due_at", "warn_at",
                 "status", "ended_at", "warned_at")


def _pick(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    for name, share in shares:
        roll -= share
        if roll < 0:
            return name
    return shares[-1][0]


def make_rows(count: int, playbook: Playbook, now: datetime, due_share: float, seed: int = 7) -> Rows:
    """`count` open deals with their leads and clocks (see the module's docstring)."""
    rng = random.Random(seed)
    rows = Rows()
    commitment = {c.measure: c for c in playbook.sla.commitments}
    teams = playbook.routing.teams
    horizon = now + WINDOWS * AHEAD
    running: list[list[Any]] = []
    for deal_id in range(1, count + 1):
        team = _pick(rng, TEAM_SHARES)
        reps = teams[team].reps if team in teams else ()
        owner = rng.choices([r.email for r in reps], weights=[r.weight for r in reps])[0] if reps else None
        stage = _pick(rng, STAGES)
        opened = now - timedelta(hours=rng.uniform(0.5, 21 * 24))
        entered = opened if stage != "sql" else opened + (now - opened) * rng.uniform(0.2, 0.9)
        country = rng.choice(COUNTRIES[team])
        email = f"lead{deal_id}@company{deal_id % 7919}.example"
        fields = {"name": f"Lead {deal_id}", "title": rng.choice(TITLES), "company": f"Company {deal_id % 7919}",
                  "country": country, "industry": rng.choice(INDUSTRIES), "company_size": rng.choice([50, 300, 2000])}
        fit = float(rng.choice([45, 60, 70, 85]))
        rows.leads.append((deal_id, email, stage, stage, entered, opened - timedelta(days=rng.uniform(1, 60)), now,
                           orjson.dumps(fields).decode(), fit, orjson.dumps({"target industry": 25.0}).decode(),
                           0.0, None, "{}", owner, "website"))
        routed = f"rule '{team}' → team '{team}'" if owner else "no routing rule matched"
        package = {"fit": fit, "engagement": 0.0, "fields": fields, "recent_events": []}
        rows.deals.append((deal_id, deal_id, stage, team, owner, opened, entered, opened if owner else None, routed,
                           orjson.dumps(package).decode(), now))
        measures = ("accept", "first_touch", "attempts") if stage != "sql" else ("first_touch", "attempts", "stage_time")
        if stage != "mql":  # answered: the answer clock was met
            accept = commitment["accept"]
            met = opened + timedelta(minutes=rng.uniform(5, 200))
            rows.clocks.append([None, deal_id, accept.name, "accept", team, owner, opened,
                                opened + accept.within, opened + accept.within * accept.warn_at, "met", met, None])
        for measure in measures:
            c = commitment[measure]
            started = entered if measure == "stage_time" else opened
            due = horizon + timedelta(hours=rng.uniform(1, 28 * 24))  # over the next four weeks
            warn = max(started + (due - started) * c.warn_at, horizon + timedelta(seconds=rng.uniform(60, 3600)))
            clock = [None, deal_id, c.name, measure, team, owner, started, due, warn, "running", None, None]
            rows.clocks.append(clock)
            running.append(clock)
    rows.running = len(running)
    chosen = rng.sample(running, min(len(running), WINDOWS * round(due_share * len(running))))
    for index, clock in enumerate(chosen):
        window = index % WINDOWS
        start, started = now + window * AHEAD, clock[6]
        if rng.random() < 0.4:  # due within the window: a breach (warned earlier, by a sweep before "now")
            clock[7] = start + timedelta(seconds=rng.uniform(60, AHEAD.total_seconds() - 60))
            clock[8] = max(started, min(started + (clock[7] - started) * 0.75, now - timedelta(minutes=1)))
            clock[11] = clock[8] + timedelta(seconds=1)
            rows.due_breach[window] += 1
        else:  # past its warning time within the window; due after every window
            clock[8] = start + timedelta(seconds=rng.uniform(60, AHEAD.total_seconds() - 60))
            clock[7] = max(started + (clock[8] - started) / 0.75, horizon + timedelta(minutes=10))
            rows.due_warning[window] += 1
    rows.clocks = [(index, *clock[1:]) for index, clock in enumerate(rows.clocks, start=1)]
    return rows


# --- the stores ---------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")  # as LeadRelay stores it
    return value


class Store:
    """One database: its URL for LeadRelay, and the driver alone for setup and raw reads."""

    name: str
    url: str
    marker: str

    def load(self, rows: Rows) -> None: ...

    def raw(self) -> Any: ...

    def value(self, moment: datetime) -> Any:
        return moment

    def full_scan(self, connection: Any, now: Any) -> tuple[float, int]: ...

    def rolled_back(self, connection: Any) -> Any: ...

    def explain(self, connection: Any, statement: str, parameters: Any) -> list[str]: ...


class SqliteStore(Store):
    name, marker = "SQLite", "?"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def load(self, rows: Rows) -> None:
        connection = sqlite3.connect(self.path)
        try:
            connection.execute("PRAGMA synchronous=OFF")  # setup only
            for table, columns, values in (("leads", LEAD_COLUMNS, rows.leads), ("deals", DEAL_COLUMNS, rows.deals),
                                           ("clocks", CLOCK_COLUMNS, rows.clocks)):
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    ([_sqlite_value(v) for v in row] for row in values))
            connection.commit()
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()

    def raw(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def value(self, moment: datetime) -> Any:
        return _sqlite_value(moment)

    def full_scan(self, connection: sqlite3.Connection, now: Any) -> tuple[float, int]:
        began = time.perf_counter()
        count = connection.execute(
            "SELECT count(*) FROM clocks NOT INDEXED WHERE status = 'running'"
            " AND (due_at <= ? OR (warned_at IS NULL AND warn_at <= ?))", (now, now)).fetchone()[0]
        return time.perf_counter() - began, count

    def explain(self, connection: Any, statement: str, parameters: Any) -> list[str]:
        return [row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]

    @contextmanager
    def rolled_back(self, connection: sqlite3.Connection) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.rollback()


class PostgresStore(Store):
    name, marker = "PostgreSQL", "%s"

    def __init__(self, url: str, analyze: bool) -> None:
        self.url = url
        self.analyze = analyze
        self.dsn = url.replace("postgresql+psycopg", "postgresql")

    def raw(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                               options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")

    def load(self, rows: Rows) -> None:
        with self.raw() as connection:
            with connection.transaction():
                for table, columns, values in (("leads", LEAD_COLUMNS, rows.leads),
                                               ("deals", DEAL_COLUMNS, rows.deals),
                                               ("clocks", CLOCK_COLUMNS, rows.clocks)):
                    with connection.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
                    connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))")
            if self.analyze:
                connection.execute("VACUUM ANALYZE")

    def full_scan(self, connection: psycopg.Connection[Any], now: Any) -> tuple[float, int]:
        with connection.transaction():
            for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                connection.execute(f"SET LOCAL {setting} = off")
            began = time.perf_counter()
            count = connection.execute(
                "SELECT count(*) FROM clocks WHERE status = 'running'"
                " AND (due_at <= %s OR (warned_at IS NULL AND warn_at <= %s))", (now, now)).fetchone()[0]
            return time.perf_counter() - began, count

    def explain(self, connection: Any, statement: str, parameters: Any) -> list[str]:
        return [row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)]

    @contextmanager
    def rolled_back(self, connection: psycopg.Connection[Any]) -> Iterator[None]:
        with connection.transaction(force_rollback=True):
            yield


@contextmanager
def fresh_postgres(analyze: bool) -> Iterator[PostgresStore]:
    """A new PostgreSQL database beside the configured one, dropped afterwards."""
    name = f"leadrelay_sla_{uuid.uuid4().hex[:8]}"
    dsn = POSTGRES_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PostgresStore(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", analyze)
    finally:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- timing the parts ---------------------------------------------------------------------


def statement_kind(statement: str) -> str:
    head = statement.lstrip().split(None, 1)[0].upper()
    match = re.search(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
    if not match:
        return " ".join(statement.split("(")[0].split()[:2])
    kind = f"{head} {match.group(1)}"
    if head == "SELECT" and re.search(r"\bcount\(", statement, re.IGNORECASE):
        kind += " (count)"
    elif head == "SELECT" and re.search(r"\bFOR UPDATE\b", statement, re.IGNORECASE):
        kind += " (locking)"
    return kind


class Tracer:
    """Times every statement LeadRelay sends (by kind) while switched on; off, it costs one check."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.statements: list[tuple[str, Any]] = []  # captured (statement, parameters) while `capture`
        self.capture = False
        self.times: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.capture:
            self.statements.append((statement, parameters))
        if self.on:
            conn.info["began"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.on:
            kind = statement_kind(statement)
            self.times[kind] += time.perf_counter() - conn.info.pop("began")
            self.counts[kind] += 1


class Parts:
    """Times the steps of one sweep by wrapping them (this process only; LeadRelay's code unchanged)."""

    def __init__(self) -> None:
        self.times: Counter[str] = Counter()
        self.on = False

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return function(*args, **kwargs)
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.times[name] += time.perf_counter() - began
        return timed


def uow_factory(engine: Engine, parts: Parts) -> Callable[[], UnitOfWork]:
    class TimedUnitOfWork(UnitOfWork):
        def __enter__(self) -> UnitOfWork:
            began = time.perf_counter()
            super().__enter__()
            if parts.on:
                parts.times["begin (connection, BEGIN)"] += time.perf_counter() - began
                deals = self.deals
                deals.due_clock_deals = parts.wrap("find due deals (two index reads)", deals.due_clock_deals)  # type: ignore[method-assign]
                deals.by_ids = parts.wrap("lock and load the deals and leads", deals.by_ids)  # type: ignore[method-assign]
                deals.running_clocks = parts.wrap("read the deals' running clocks", deals.running_clocks)  # type: ignore[method-assign]
                self.leads.save = parts.wrap("save changed leads", self.leads.save)  # type: ignore[method-assign]
            return self

        def commit(self) -> None:
            began = time.perf_counter()
            super().commit()
            if parts.on:
                parts.times["commit"] += time.perf_counter() - began

        def __exit__(self, *exc: object) -> None:
            began = time.perf_counter()
            super().__exit__(*exc)
            if parts.on:
                parts.times["end (rollback, return the connection)"] += time.perf_counter() - began

    return lambda: TimedUnitOfWork(engine)


# --- the benchmark ------------------------------------------------------------------------


@dataclass
class Sweep:
    seconds: float
    fired: int
    breaches: int
    warnings: int


@dataclass
class Result:
    store: str
    deals: int
    running: int
    due_clocks: int  # running clocks due or past their warning an hour later (by the full scan's count)
    idle: list[float]
    due: list[Sweep]  # the first window, sweep after sweep until none is due
    traced: list[Sweep]  # the second window, timed part by part
    raw_idle: list[float]
    raw_due: list[float]
    raw_due_rows: int
    scan: list[float]
    raw_write: list[float]
    raw_written: int
    plans: list[tuple[str, list[str]]]
    breakdown: list[str]
    problems: list[str]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def raw_reads(store: Store, connection: Any, now: Any) -> tuple[float, int]:
    """The two bare index reads of the sweep, through the driver; their time and rows."""
    m = store.marker
    began = time.perf_counter()
    due = connection.execute(f"SELECT deal_id FROM clocks WHERE status = 'running' AND due_at <= {m}"
                             f" ORDER BY due_at LIMIT {LIMIT}", (now,)).fetchall()
    warn = connection.execute(f"SELECT deal_id FROM clocks WHERE status = 'running' AND warned_at IS NULL"
                              f" AND warn_at <= {m} ORDER BY warn_at LIMIT {LIMIT}", (now,)).fetchall()
    return time.perf_counter() - began, len(due) + len(warn)


def raw_write(store: Store, connection: Any, now: Any) -> tuple[float, int]:
    """What writing a sweep's clocks costs through the driver alone: 500 of the clocks due or to warn
    at `now` (those due first), marked breached or warned by one `executemany`, then rolled back."""
    m = store.marker
    with store.rolled_back(connection):
        due = [row[0] for row in connection.execute(
            f"SELECT id FROM clocks WHERE status = 'running' AND due_at <= {m} ORDER BY due_at LIMIT {LIMIT}",
            (now,)).fetchall()]
        warn = [row[0] for row in connection.execute(
            f"SELECT id FROM clocks WHERE status = 'running' AND warned_at IS NULL AND warn_at <= {m}"
            f" ORDER BY warn_at LIMIT {LIMIT}", (now,)).fetchall()]
        rows = ([("breached", now, None, clock_id) for clock_id in due] + [
            ("running", None, now, clock_id) for clock_id in warn if clock_id not in set(due)])[:LIMIT]
        began = time.perf_counter()
        cursor = connection.cursor()
        cursor.executemany(f"UPDATE clocks SET status = {m}, ended_at = {m}, warned_at = {m} WHERE id = {m}", rows)
        return time.perf_counter() - began, len(rows)


def run_store(store: Store, args: argparse.Namespace, deals: int, playbook: Playbook, now: datetime) -> Result:
    engine = make_engine(store.url)
    try:
        migrate(engine)
        began = time.perf_counter()
        rows = make_rows(deals, playbook, now, args.due_share)
        made = time.perf_counter() - began
        store.load(rows)
        print(f"  {store.name}: {deals:,} open deals, {len(rows.clocks):,} clocks ({rows.running:,} running) made in "
              f"{made:.1f} s, loaded in {time.perf_counter() - began - made:.1f} s", flush=True)
        return measure(store, engine, rows, args, playbook, now)
    finally:
        engine.dispose()


@contextmanager
def counting(parts: Parts) -> Iterator[Counter[str]]:
    """`after_clocks` as the sweep calls it, wrapped to count what each call fired (and, when
    `parts` is on, to time it)."""
    counts: Counter[str] = Counter()
    original = sla_service.after_clocks
    timed = parts.wrap("fire: automations, escalations, writes (after_clocks)", original)

    def wrapper(uow: UnitOfWork, playbook: Playbook, fired: list[tuple[Any, str]], now: datetime, **rest: Any) -> Any:
        counts.update(what for _, what in fired)
        return timed(uow, playbook, fired, now, **rest)

    sla_service.after_clocks = wrapper  # type: ignore[assignment]
    try:
        yield counts
    finally:
        sla_service.after_clocks = original


def drain(factory: Callable[[], UnitOfWork], playbook: Playbook, at: datetime, parts: Parts, expected: int,
          profiler: cProfile.Profile | None = None) -> list[Sweep]:
    """Sweeps at `at`, one after another, until none fires (a worker catching up)."""
    sweeps: list[Sweep] = []
    with counting(parts) as counts:
        for _ in range(2 * (expected // LIMIT) + 5):  # bounded: each sweep fires up to LIMIT deals' clocks
            before = counts.copy()
            if profiler is not None and not sweeps:
                profiler.enable()
            began = time.perf_counter()
            fired = sweep(factory, playbook, at, limit=LIMIT)
            seconds = time.perf_counter() - began
            if profiler is not None:
                profiler.disable()
            if not fired:
                break
            sweeps.append(Sweep(seconds, fired, counts["breach"] - before["breach"],
                                counts["warning"] - before["warning"]))
    return sweeps


def measure(store: Store, engine: Engine, rows: Rows, args: argparse.Namespace, playbook: Playbook,
            now: datetime) -> Result:
    later, last = now + AHEAD, now + WINDOWS * AHEAD
    tracer, parts = Tracer(engine), Parts()
    factory = uow_factory(engine, parts)
    problems: list[str] = []

    # the idle check: nothing is due
    tracer.capture = True
    warm = sweep(factory, playbook, now, limit=LIMIT)
    tracer.capture = False
    if warm:
        problems.append(f"the idle sweep fired {warm} clocks (nothing should be due)")
    idle_statements = [(s, p) for s, p in tracer.statements if "FROM clocks" in s]
    idle = []
    for _ in range(args.runs):
        began = time.perf_counter()
        fired = sweep(factory, playbook, now, limit=LIMIT)
        idle.append(time.perf_counter() - began)
        if fired:
            problems.append(f"an idle sweep fired {fired} clocks")

    # the plans of the due-clock queries, as the sweep sends them, at both times
    plans: list[tuple[str, list[str]]] = []
    tracer.statements = []
    tracer.capture = True
    with factory() as uow:  # the same read the sweep starts with, an hour later; rolled back
        uow.deals.due_clock_deals(later, limit=LIMIT)
    tracer.capture = False
    later_statements = [(s, p) for s, p in tracer.statements if "FROM clocks" in s]
    with engine.connect() as connection:
        for when, captured in (("now", idle_statements), ("an hour later", later_statements)):
            for statement, parameters in captured:
                index = "warn_at" if "warn_at <=" in statement else "due_at"
                plans.append((f"{index} query, {when}", store.explain(connection, statement, parameters)))
        connection.rollback()

    # the raw limit and the full scan, through the driver alone
    raw = store.raw()
    try:
        raw_reads(store, raw, store.value(now))  # warm
        raw_idle = [raw_reads(store, raw, store.value(now))[0] for _ in range(args.runs)]
        raw_due, raw_due_rows = [], 0
        for _ in range(args.runs):
            seconds, raw_due_rows = raw_reads(store, raw, store.value(later))
            raw_due.append(seconds)
        scans = [store.full_scan(raw, store.value(later)) for _ in range(args.scans)]
        writes = [raw_write(store, raw, store.value(later)) for _ in range(3)]
    finally:
        raw.close()
    due_clocks = scans[0][1]
    expected = [b + w for b, w in zip(rows.due_breach, rows.due_warning)]
    if due_clocks != expected[0]:
        problems.append(f"{due_clocks} clocks due an hour later by the full scan, {expected[0]} made due")

    # the first window: sweeps that fire clocks, one after another, timed as they are
    due = drain(factory, playbook, later, parts, expected[0])
    # the second window, made the same way: timed part by part (and profiled with --profile)
    profiler = cProfile.Profile() if args.profile else None
    tracer.on = parts.on = True
    try:
        traced = drain(factory, playbook, last, parts, expected[1], profiler)
    finally:
        tracer.on = parts.on = False
    breakdown = describe(traced, parts, tracer)
    if profiler is not None:
        print(f"  cProfile of the first sweep of the second window ({store.name}), by cumulative time:")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    for window, sweeps in enumerate((due, traced)):
        breaches, warnings = sum(s.breaches for s in sweeps), sum(s.warnings for s in sweeps)
        if (breaches, warnings) != (rows.due_breach[window], rows.due_warning[window]):
            problems.append(f"window {window + 1}: the sweeps fired {breaches} breaches and {warnings} warnings, "
                            f"{rows.due_breach[window]} and {rows.due_warning[window]} were made due")
    problems += check(engine, sum(rows.due_breach))
    return Result(store.name, len(rows.deals), rows.running, due_clocks, idle, due, traced, raw_idle, raw_due,
                  raw_due_rows, [s for s, _ in scans], [s for s, _ in writes], writes[0][1], plans, breakdown, problems)


def describe(sweeps: list[Sweep], parts: Parts, tracer: Tracer) -> list[str]:
    if not sweeps:
        return ["(no sweep timed part by part: nothing came due in the second window)"]
    seconds = sum(s.seconds for s in sweeps)
    lines = [(f"where the time goes: the second hour's clocks, made like the first's, {len(sweeps)} sweeps timed part "
              f"by part ({_ms(seconds)} in all, {sum(s.fired for s in sweeps):,} clocks fired: "
              f"{sum(s.breaches for s in sweeps):,} breaches, {sum(s.warnings for s in sweeps):,} warnings)")]
    lines.append("  sweeps (timed part by part): " + ", ".join(f"{_ms(s.seconds)} ({s.breaches} breaches, "
                                                             f"{s.warnings} warnings)" for s in sweeps))
    for name, spent in parts.times.most_common():
        lines.append(f"  {name:<58}{_ms(spent):>12}{spent / seconds:>7.0%}")
    in_sql = sum(tracer.times.values())
    lines.append(f"  SQL statements: {sum(tracer.counts.values()):,}, executing them {_ms(in_sql)} "
                 f"({in_sql / seconds:.0%}; fetching the rows of a SELECT is not included), by kind:")
    for kind, spent in tracer.times.most_common(12):
        lines.append(f"    {kind:<34}{tracer.counts[kind]:>7,} x{_ms(spent):>12}")
    return lines


def check(engine: Engine, made_due: int) -> list[str]:
    """What the sweeps stored matches what they fired."""
    problems = []
    with engine.connect() as connection:
        breached = connection.scalar(text("SELECT count(*) FROM clocks WHERE status = 'breached'"))
        emails = connection.scalar(text("SELECT count(*) FROM outbox WHERE event = 'sla.breach'"))
        reassigned = connection.scalar(text("SELECT count(*) FROM deal_activity WHERE action = 'reassigned'"))
        connection.rollback()
    print(f"  stored: {breached:,} clocks breached, {emails:,} breach emails to managers in the outbox, "
          f"{reassigned:,} deals reassigned")
    if breached != made_due:
        problems.append(f"{breached} clocks stored as breached, {made_due} were made due")
    if breached and not emails:
        problems.append("clocks were breached but no manager was emailed")
    return problems


# --- the report -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(results: list[Result]) -> bool:
    print()
    for result in results:
        print(f"{result.store}: plans of the sweep's due-clock queries")
        for title, plan in result.plans:
            print(f"  {title}:")
            for line in plan:
                print(f"    {line}")
    print()
    print(f"{'':<12}{'open':>9}{'idle sweep':>18}{'sweep with K due':>20}{'K: clocks':>11}"
          f"{'raw index read':>22}{'raw write':>11}{'full scan':>12}")
    print(f"{'store':<12}{'deals':>9}{'p50 (max)':>18}{'p50 (max)':>20}{'fired, p50':>11}"
          f"{'idle / K due':>22}{'K clocks':>11}{'(no index)':>12}   target: one sweep <= {TARGET * 1000:.0f} ms")
    for r in results:
        idle = median(r.idle)
        times = [s.seconds for s in r.due]
        verdict = f"idle {'met' if idle <= TARGET else 'MISSED'}"
        if times:
            verdict += f", with K due {'met' if max(times) <= TARGET else 'MISSED'}"
        due_text = f"{_ms(median(times))} ({max(times) * 1000:.1f})" if times else "-"
        fired = f"{median([float(s.fired) for s in r.due]):.0f}" if r.due else "0"
        raw = f"{median(r.raw_idle) * 1000:.2f} / {median(r.raw_due) * 1000:.2f} ms"
        print(f"{r.store:<12}{r.deals:>9,}{f'{_ms(idle)} ({max(r.idle) * 1000:.1f})':>18}{due_text:>20}{fired:>11}"
              f"{raw:>22}{_ms(median(r.raw_write)):>11}{_ms(median(r.scan)):>12}   {verdict}")
    print()
    for r in results:
        share = r.due_clocks / r.running if r.running else 0.0
        print(f"{r.store}: {r.running:,} running clocks; an hour later {r.due_clocks:,} ({share:.1%}) are due or "
              f"past their warning; the raw read then returns {r.raw_due_rows} rows (at most 500 + 500), the raw "
              f"write updates {r.raw_written} of those clocks. "
              f"Sweeps with K due, one after another (oldest due first):")
        for s in r.due:
            print(f"    {_ms(s.seconds):>10}: {s.fired} clocks fired ({s.breaches} breaches, {s.warnings} warnings)")
        for line in r.breakdown:
            print(f"  {line}")
        for problem in r.problems:
            print(f"  CHECK FAILED: {problem}")
    return not any(r.problems for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000, help="open deals (default 100,000)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="the store (default sqlite)")
    parser.add_argument("--due-share", type=float, default=0.01, metavar="SHARE",
                        help="share of the running clocks that come due or to their warning in each of the "
                             "two hours after 'now' (default 0.01: 1 %%)")
    parser.add_argument("--runs", type=int, default=30, help="idle sweeps and raw reads timed (default 30)")
    parser.add_argument("--scans", type=int, default=5, help="full scans timed (default 5)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="PostgreSQL: do not vacuum and analyse the database after loading it (as on a "
                             "server without autovacuum)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the first sweep timed part by part and print the top 25 functions "
                             "(that sweep's parts then include the profiler's cost)")
    parser.add_argument("--quick", action="store_true", help="10,000 open deals, fewer runs: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    if args.quick:
        args.deals, args.runs, args.scans = 10_000, 10, 3
    if args.deals < 1 or args.runs < 1 or args.scans < 1 or not 0 <= args.due_share <= 0.5:
        parser.error("--deals, --runs and --scans must be positive, --due-share between 0 and 0.5")

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)  # the `finally` blocks drop the database and the files
    playbook = parse_playbook(default_playbook_text())
    now = utc_now().replace(second=0, microsecond=0)
    print(f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} cores; "
          f"{args.deals:,} open deals, the default playbook, up to {LIMIT} deals a sweep")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        if args.database in ("sqlite", "both"):
            results.append(run_store(SqliteStore(Path(folder) / "sla.db"), args, args.deals, playbook, now))
        if args.database in ("postgresql", "both"):
            with fresh_postgres(args.analyze) as store:
                results.append(run_store(store, args, args.deals, playbook, now))
    ok = report(results)
    if args.json:
        from _results import Results

        out = Results("sla_sweep")
        for r in results:
            times = [step.seconds for step in r.due]
            out.add("SLA sweep, idle (p50)", median(r.idle) * 1000, "ms", store=r.store,
                    limit=median(r.raw_idle) * 1000, limit_what="raw index read, ms", target=f"<= {TARGET * 1000:.0f} ms",
                    met=median(r.idle) <= TARGET, deals=r.deals)
            if times:
                out.add("SLA sweep with clocks due (slowest)", max(times) * 1000, "ms", store=r.store,
                        limit=median(r.raw_due) * 1000 + median(r.raw_write) * 1000,
                        limit_what="raw read + write of the due clocks, ms", target=f"<= {TARGET * 1000:.0f} ms",
                        met=max(times) <= TARGET, deals=r.deals)
        out.write(args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Reports benchmark: each analytics report in at most 1 s on the 1M-lead demo-sized data set
(about 20M events), on SQLite and on PostgreSQL, with at most 1 GB of memory.

    python benchmarks/reports_bench.py                          # 1,000,000 leads on SQLite
    python benchmarks/reports_bench.py --database both
    python benchmarks/reports_bench.py --leads 10000 --database both   # a smoke run (a minute)
    python benchmarks/reports_bench.py --keep --sqlite-path /tmp/reports.db    # keep (and reuse) the data

What it does:

1. **Bulk data, not the scoring path.** Generating 1M leads through `leadrelay demo` (the batch
   path, scoring every event) takes about 20 minutes on SQLite and longer on PostgreSQL, so this
   script writes rows of the same shape straight into a fresh, migrated database: leads over six
   months (sources, company sizes, territories as the demo draws them), about 20 events each
   (page views of the demo's pages, email opens and clicks of its campaigns, forms, downloads of
   its assets, webinars; some anonymous before the lead was known; a campaign or referrer touch on
   the identify of paid, social and referral leads, on email clicks and on some visits), the
   stage history (lead, MQL or a demo-request fast track to SAL, SQL, opportunity, won or lost,
   hand-backs and disqualifications with the playbook's reasons, some recycled leads qualifying
   again), a deal per hand-off with its team, rep, activity and won value, reps' calls, the SLA
   clocks of "answer the hand-off" and "first touch" (met or breached), the demo's content items
   and reps' shares. Funnel proportions follow the demo's (about 21 % of leads become MQLs, 1.6 %
   customers). The events' indexes are dropped while loading and built again after (the same
   indexes, built once instead of row by row); then the store's statistics are gathered
   (`ANALYZE`; on PostgreSQL `VACUUM ANALYZE`, as autovacuum would).
2. **The analytics tables** are built from it by LeadRelay's own `refresh` (timed: a one-off).
3. **The reports**, in a fresh process (its peak memory is the figure), each through the same
   function the API calls (`run_report`: the refresh check, then the report), for the last 30 days
   and for the whole six months: funnel, funnel by source, velocity, sources, content, SLA, and
   the whole meeting report. Each runs 5 times; the median and the slowest are printed, beside a
   plain `SELECT count(*) FROM events` timed the same way.
4. **Catching up**: 1,000 leads move on (stage changes and deal activity written as the app writes
   them), and the next refresh is timed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.clock import UTC
from leadrelay.domain.playbook import Playbook

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_DATABASE = "leadrelay_bench_reports"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 182
DAY = 86400.0
HOUR = 3600.0
CHUNK = 10_000  # leads generated and written at a time
REPEATS = 5
TARGET_SECONDS = 1.0
TARGET_MEMORY_MB = 1024

# --- the world (as the demo draws it) ----------------------------------------------------------

SOURCES = (("organic search", 0.24), ("paid search", 0.14), ("social", 0.1), ("referral", 0.08),
           ("webinar", 0.1), ("content", 0.13), ("event", 0.08), ("direct", 0.08), ("partner", 0.05))
TOUCH_OF_SOURCE = {  # the campaign touch a lead of this source arrives with (on its identify)
    "paid search": ("google", "cpc", ("brand", "competitor-terms", "lead-scoring", "sla-template")),
    "social": ("linkedin", "social", ("abm-q3", "thought-leadership", "webinar-promo")),
    "referral": ("g2.com", "referral", (None,)),
    "partner": ("partner-portal", "partner", ("co-marketing",)),
}
TEAMS = {"North America": ("americas", ("maya.johnson", "daniel.okafor", "ethan.brooks")),
         "Latin America": ("americas", ("sofia.ramirez",)),
         "EMEA": ("emea", ("lena.fischer", "tom.wright", "amelie.laurent")),
         "APAC": ("apac", ("kenji.sato", "priya.nair"))}
TERRITORIES = (("North America", 0.42), ("EMEA", 0.32), ("APAC", 0.16), ("Latin America", 0.10))
COUNTRY = {"North America": "US", "EMEA": "DE", "APAC": "AU", "Latin America": "BR"}
HAND_BACK = ("not ready", "no budget", "no authority", "no need", "bad timing", "no response")
DISQUALIFY = ("not a fit", "spam", "duplicate")
LOST = ("price", "competitor", "no decision", "timing", "product fit")
PAGES = ("/", "/pricing", "/pricing/enterprise", "/product", "/product/scoring", "/product/handoff",
         "/product/reports", "/integrations", "/customers", "/customers/case-studies", "/about", "/careers",
         *(f"/blog/{slug}" for slug in ("mql-vs-sql", "lead-scoring-101", "sales-marketing-sla", "speed-to-lead",
                                       "funnel-metrics-that-matter", "attribution-models", "recycling-leads")),
         *(f"/docs/{page}" for page in ("getting-started", "playbook", "scoring", "api")))
CAMPAIGNS = ("newsletter-2025-01", "newsletter-2025-02", "webinar-invite", "ebook-follow-up", "product-update",
             "case-study-fintech", "nurture-1", "nurture-2", "nurture-3", "event-follow-up")
ASSETS = ("ebook-lead-scoring", "guide-sales-marketing-sla", "report-state-of-b2b-funnels",
          "template-handoff-checklist", "whitepaper-attribution")
WEBINARS = ("webinar-speed-to-lead", "webinar-funnel-metrics", "webinar-abm-basics", "webinar-product-tour")
FORMS = ("contact", "newsletter", "ebook", "webinar registration", "pricing question")
CONTENT = ([("asset", a) for a in ASSETS] + [("webinar", w) for w in WEBINARS] + [("email", c) for c in CAMPAIGNS]
           + [("page", p) for p in ("/pricing", "/customers/case-studies", "/product/reports", "/blog/speed-to-lead",
                                    "/blog/mql-vs-sql")])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


PAGE_PROPS = [_json({"path": p}) for p in PAGES]
OPEN_PROPS = [_json({"campaign": c}) for c in CAMPAIGNS]
CLICK_PROPS = [_json({"campaign": c, "url": "/blog/speed-to-lead"}) for c in CAMPAIGNS]
DOWNLOAD_PROPS = [_json({"asset": a}) for a in ASSETS]
WEBINAR_PROPS = [_json({"webinar": w}) for w in WEBINARS]
FORM_PROPS = [_json({"form": f}) for f in FORMS]
CLICK_TOUCHES = [_json({"source": "newsletter", "medium": "email", "campaign": c}) for c in CAMPAIGNS]
VISIT_TOUCHES = [_json({"source": s, "medium": m, "campaign": c}) for s, m, c in (
    ("google", "cpc", "brand"), ("linkedin", "social", "abm-q3"), ("newsletter", "email", "product-update"),
    ("bing", "cpc", "brand"))]
# (type, name, properties) by share of the events after the identify
EVENT_MIX = ((0.55, "page", "page_view", PAGE_PROPS), (0.22, "track", "email_open", OPEN_PROPS),
             (0.08, "track", "email_click", CLICK_PROPS), (0.05, "track", "form_submit", FORM_PROPS),
             (0.07, "track", "download", DOWNLOAD_PROPS), (0.03, "track", "webinar_attended", WEBINAR_PROPS))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll, total = rng.random(), 0.0
    for name, weight in weighted:
        total += weight
        if roll < total:
            return name
    return weighted[-1][0]


class Writer:
    """Rows straight to the driver: executemany on SQLite (times as text), COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    def time(self, seconds: float) -> str:
        moment = datetime.fromtimestamp(seconds, UTC)
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds") if self.sqlite else moment.isoformat()

    def write(self, connection: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = ", ".join(f'"{c}"' for c in columns)
        if self.sqlite:
            connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})",
                                       rows)
            return
        driver = connection.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


LEAD_COLUMNS = ("id", "email", "stage", "highest_stage", "stage_entered_at", "created_at", "updated_at", "fields",
                "fit", "fit_breakdown", "engagement", "engagement_rules", "owner", "source", "first_touch",
                "last_touch")
EVENT_COLUMNS = ("message_id", "lead_id", "user_id", "anonymous_id", "type", "name", "timestamp", "received_at",
                 "properties", "traits", "points", "touch")
CHANGE_COLUMNS = ("lead_id", "from_stage", "to_stage", "at", "by", "reason")
DEAL_COLUMNS = ("id", "lead_id", "stage", "team", "owner", "opened_at", "stage_entered_at", "assigned_at", "closed_at",
                "outcome", "close_reason", "value", "routed_by", "package", "updated_at")
ACTIVITY_COLUMNS = ("deal_id", "action", "at", "by", "from_stage", "to_stage", "owner", "reason", "value")
TOUCH_COLUMNS = ("deal_id", "lead_id", "kind", "at", "logged_at", "by", "outcome")
CLOCK_COLUMNS = ("deal_id", "commitment", "measure", "team", "owner", "started_at", "due_at", "warn_at", "status",
                 "ended_at")
SHARE_COLUMNS = ("item_id", "lead_id", "deal_id", "by", "at", "logged_at")


class Generator:
    def __init__(self, writer: Writer, seed: int) -> None:
        self.w = writer
        self.rng = random.Random(seed)
        self.now = NOW.timestamp()
        self.start = self.now - HISTORY_DAYS * DAY
        self.deal_id = 0
        self.counts: dict[str, int] = {}

    def chunk(self, first: int, count: int) -> dict[str, list[tuple[Any, ...]]]:
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in (
            "leads", "events", "stage_changes", "deals", "deal_activity", "touches", "clocks", "content_shares")}
        for lead_id in range(first, first + count):
            self.lead(lead_id, rows)
        return rows

    def lead(self, lead_id: int, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        rng, t, now = self.rng, self.w.time, self.now
        created = self.start + HISTORY_DAYS * DAY * rng.random() ** 0.87
        source = _pick(rng, SOURCES)
        territory = _pick(rng, TERRITORIES)
        size = int(math.exp(rng.uniform(math.log(2), math.log(20000))))
        email = f"lead{lead_id}@firm{lead_id % 97_000}.example"
        fields = {"source": source, "country": COUNTRY[territory], "territory": territory, "company_size": size}

        # events: some anonymous visits first, the identify, then what the lead does
        count = min(max(int(rng.lognormvariate(math.log(14.5), 0.8)), 1), 400)
        span = min(rng.expovariate(1 / (40 * DAY)), now - created)
        message = f"b{lead_id}-"
        events = rows["events"]
        touch = None
        if source in TOUCH_OF_SOURCE:
            origin, medium, campaigns = TOUCH_OF_SOURCE[source]
            touch = _json({"source": origin, "medium": medium, "campaign": rng.choice(campaigns)})
        visitor = f"v{lead_id}" if rng.random() < 0.35 else None
        number = 0
        if visitor:
            for _ in range(1 + int(rng.expovariate(0.7))):
                at = created - rng.uniform(60, 10 * DAY)
                events.append((f"{message}{number}", lead_id, None, visitor, "page", "page_view", t(at), t(at),
                               rng.choice(PAGE_PROPS), None, 1.0, touch if number == 0 else None))
                number += 1
        events.append((f"{message}{number}", lead_id, email, visitor, "identify", "identify", t(created), t(created),
                       "{}", _json(fields), 0.0, touch))
        number += 1
        first_touch = touch
        for _ in range(count - 1):
            at = created + span * rng.random()
            roll, total = rng.random(), 0.0
            for share, kind, name, properties in EVENT_MIX:
                total += share
                if roll < total:
                    break
            visit_touch = None
            if name == "email_click":
                visit_touch = CLICK_TOUCHES[rng.randrange(len(CLICK_TOUCHES))]
            elif name == "page_view" and rng.random() < 0.1:
                visit_touch = VISIT_TOUCHES[rng.randrange(len(VISIT_TOUCHES))]
            if first_touch is None and visit_touch is not None:
                first_touch = visit_touch
            events.append((f"{message}{number}", lead_id, email, None, kind, name, t(at), t(at),
                           properties[rng.randrange(len(properties))], None, 1.0, visit_touch))
            number += 1

        # the funnel
        changes = rows["stage_changes"]
        changes.append((lead_id, None, "lead", t(created), "created", None))
        stage, highest, entered, owner = "lead", "lead", created, None
        if rng.random() < 0.21:
            at = created + rng.expovariate(1 / (12 * DAY))
            rounds = 2 if rng.random() < 0.1 else 1
            while rounds and at < now:
                rounds -= 1
                team, reps = TEAMS[territory]
                owner = f"{rng.choice(reps)}@sales.leadrelay.example"
                fast = rng.random() < 0.4 and stage == "lead"
                to = "sal" if fast else "mql"
                changes.append((lead_id, stage, to, t(at), "fast_track:demo request" if fast else "rule:mql", None))
                stage, entered = to, at
                highest = to if _rank(to) > _rank(highest) else highest
                self.deal_id += 1
                deal = self.deal_id
                activity = [(deal, "opened", t(at), "routing", None, to, owner, None, None)]
                opened = at
                self.sla(rows, deal, lead_id, team, owner, opened)
                outcome, reason, value, closed = None, None, None, None
                steps = ((("mql", "sal"), lambda: rng.lognormvariate(math.log(4 * HOUR), 1.2), 0.86),
                         (("sal", "sql"), lambda: rng.uniform(1, 12) * DAY, 0.5),
                         (("sql", "opportunity"), lambda: rng.uniform(2, 21) * DAY, 0.62),
                         (("opportunity", "customer"), lambda: rng.uniform(14, 100) * DAY, 0.29))
                for (before, after), delay, chance in steps:
                    if stage != before:
                        continue
                    at = at + delay()
                    if at >= now:
                        break
                    if rng.random() < chance:
                        changes.append((lead_id, before, after, t(at), owner, None))
                        action = "won" if after == "customer" else "moved"
                        if after == "customer":
                            value = round(rng.lognormvariate(math.log(20000), 0.8), -2)
                            outcome, closed = "won", at
                        activity.append((deal, action, t(at), owner, before, after, None, None, value))
                        stage, entered, highest = after, at, after if _rank(after) > _rank(highest) else highest
                        continue
                    if before == "opportunity":
                        to, reason, outcome = "lost", rng.choice(LOST), "lost"
                    elif rng.random() < 0.7:
                        to, reason, outcome = "recycled", rng.choice(HAND_BACK), "handed_back"
                    else:
                        to, reason, outcome = "disqualified", rng.choice(DISQUALIFY), "disqualified"
                    changes.append((lead_id, before, to, t(at), owner, reason))
                    activity.append((deal, outcome, t(at), owner, before, to, None, reason, None))
                    stage, entered, closed = to, at, at
                    break
                rows["deals"].append((deal, lead_id, stage, team, owner, t(opened), t(entered), t(opened), t(closed) if closed else None,
                                      outcome, reason, value, "bench", "{}", t(now)))
                rows["deal_activity"].extend(activity)
                if rng.random() < 0.6:
                    share_at = opened + rng.uniform(2 * HOUR, 10 * DAY)
                    if share_at < min(closed or now, now):
                        rows["content_shares"].append((1 + rng.randrange(len(CONTENT) - 10), lead_id, deal, owner,
                                                       t(share_at), t(share_at)))
                if stage == "recycled" and rounds:
                    at = entered + rng.uniform(20, 60) * DAY  # qualifies again later
                    continue
                break
        elif rng.random() < 0.05:
            at = created + rng.uniform(0, 2 * DAY)
            if at < now:
                changes.append((lead_id, "lead", "disqualified", t(at), "rule:student", "student"))
                stage, entered = "disqualified", at
        fields_json = _json(fields)
        rows["leads"].append((lead_id, email, stage, highest, t(entered), t(created), t(now), fields_json,
                              20.0, "{}", 0.0, "{}", owner, source, first_touch, None))

    def sla(self, rows: dict[str, list[tuple[Any, ...]]], deal: int, lead_id: int, team: str, owner: str,
            opened: float) -> None:
        rng, t = self.rng, self.w.time
        for commitment, measure, allowed, wait in (("answer the hand-off", "accept", 4 * HOUR, 5 * HOUR),
                                                   ("first touch", "first_touch", 8 * HOUR, 9 * HOUR)):
            took = rng.expovariate(1 / wait)
            due = opened + allowed * 1.6
            status, ended = ("met", opened + took) if opened + took < due else ("breached", due)
            if ended > self.now:
                status, ended = "running", None
            rows["clocks"].append((deal, commitment, measure, team, owner, t(opened), t(due), t(opened + allowed * 1.2),
                                   status, t(ended) if ended else None))
            if measure == "first_touch" and ended is not None and status == "met":
                rows["touches"].append((deal, lead_id, "call", t(ended), t(ended), owner, "connected"))


RANKS = {"lead": 0, "mql": 1, "sal": 2, "sql": 3, "opportunity": 4, "customer": 5}


def _rank(stage: str) -> int:
    return RANKS.get(stage, -1)


# --- building the data set ---------------------------------------------------------------------

def generate(engine: Engine, leads: int, seed: int) -> dict[str, float]:
    """Fill a fresh, migrated database; seconds spent on each step."""
    writer = Writer(engine)
    generator = Generator(writer, seed)
    timings: dict[str, float] = {}
    with engine.connect() as connection:
        index_sql = _index_definitions(connection)
        for name in index_sql:
            if name == "uq_events_message_id" and connection.dialect.name == "postgresql":
                connection.exec_driver_sql("ALTER TABLE events DROP CONSTRAINT uq_events_message_id")
            else:
                connection.exec_driver_sql(f"DROP INDEX {name}")
        connection.commit()
        writer.write(connection, "content_items", ("id", "kind", "key", "title", "created_at"), [
            (number, kind, key, key.strip("/").replace("-", " ").capitalize() or "Home", writer.time(generator.start))
            for number, (kind, key) in enumerate(CONTENT, start=1)])
        connection.commit()
        started = time.perf_counter()
        for first in range(1, leads + 1, CHUNK):
            rows = generator.chunk(first, min(CHUNK, leads + 1 - first))
            for table, columns in (("leads", LEAD_COLUMNS), ("deals", DEAL_COLUMNS), ("events", EVENT_COLUMNS),
                                   ("stage_changes", CHANGE_COLUMNS), ("deal_activity", ACTIVITY_COLUMNS),
                                   ("clocks", CLOCK_COLUMNS), ("touches", TOUCH_COLUMNS),
                                   ("content_shares", SHARE_COLUMNS)):
                writer.write(connection, table, columns, rows[table])
                generator.counts[table] = generator.counts.get(table, 0) + len(rows[table])
            connection.commit()
            print(f"\r  {first + CHUNK - 1:,} leads written ({time.perf_counter() - started:.0f} s)", end="",
                  file=sys.stderr, flush=True)
        print(file=sys.stderr)
        timings["writing rows"] = time.perf_counter() - started
        started = time.perf_counter()
        for name, sql in index_sql.items():
            connection.exec_driver_sql(sql)
        connection.commit()
        if connection.dialect.name == "postgresql":
            for table in ("leads", "deals"):
                connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                           f"(SELECT max(id) FROM {table}))")
            connection.commit()
        timings["building the events' indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    _analyze(engine)
    timings["ANALYZE"] = time.perf_counter() - started
    print("  rows: " + ", ".join(f"{table} {count:,}" for table, count in generator.counts.items()), file=sys.stderr)
    return timings


def _index_definitions(connection: Any) -> dict[str, str]:
    """The events' indexes, as the migrations made them (to build them again after loading). On
    SQLite the unique index on message ids belongs to the table and stays while loading."""
    if connection.dialect.name == "sqlite":
        return {name: sql for name, sql in connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")}
    found = {name: sql for name, sql in connection.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'pk_events'")}
    found["uq_events_message_id"] = "ALTER TABLE events ADD CONSTRAINT uq_events_message_id UNIQUE (message_id)"
    return found


def _analyze(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


# --- measuring -----------------------------------------------------------------------------


def measure(url: str) -> None:
    """(In a process of its own.) Time each report, print JSON with the figures."""
    from leadrelay.reports.content import content_report
    from leadrelay.reports.funnel import funnel_report
    from leadrelay.reports.meeting import build_meeting
    from leadrelay.reports.periods import Period
    from leadrelay.reports.sla import sla_report
    from leadrelay.reports.sources import sources_report
    from leadrelay.reports.velocity import velocity_report
    from leadrelay.services.analytics import run_report
    from leadrelay.services.unit_of_work import UnitOfWork

    engine = make_engine(url)
    playbook = _playbook()
    read_uow = lambda: UnitOfWork(engine, read_only=True)
    periods = {"last 30 days": Period(date(2026, 10, 22), date(2026, 11, 20), "UTC"),
               "six months": Period(date(2026, 5, 22), date(2026, 11, 20), "UTC")}
    reports: dict[str, Callable[[Any, Period], Any]] = {
        "funnel": lambda c, p: funnel_report(c, playbook, p),
        "funnel by source": lambda c, p: funnel_report(c, playbook, p, breakdown="source"),
        "funnel, MQL cohort by rep": lambda c, p: funnel_report(c, playbook, p, cohort="mql", breakdown="rep"),
        "velocity": lambda c, p: velocity_report(c, playbook, p, NOW),
        "sources (attribution)": lambda c, p: sources_report(c, playbook, p),
        "content": lambda c, p: content_report(c, playbook, p),
        "sla": lambda c, p: sla_report(c, playbook, p.start, p.end, NOW, by="team"),
        "meeting (all of them, twice)": lambda c, p: build_meeting(c, playbook, p, NOW),
    }
    results: dict[str, Any] = {"reports": {}}
    with engine.connect() as connection:
        results["count_events"] = _times(lambda: connection.exec_driver_sql("SELECT count(*) FROM events").scalar())
        results["events"] = connection.exec_driver_sql("SELECT count(*) FROM events").scalar()
    for period_name, period in periods.items():
        for name, report in reports.items():
            seconds = _times(lambda r=report, p=period: run_report(engine, read_uow, playbook, NOW,
                                                                   lambda c: r(c, p)))
            results["reports"][f"{name} | {period_name}"] = seconds
    results["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results))


def _times(work: Callable[[], Any]) -> list[float]:
    found = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def _playbook() -> Playbook:
    return parse_playbook(default_playbook_text(), "<built-in playbook>")


def catch_up(engine: Engine, moves: int = 1000) -> float:
    """`moves` leads move on (a stage change and a deal activity each, as the app writes them);
    the seconds the next refresh takes."""
    from leadrelay.adapters.analytics import refresh

    writer = Writer(engine)
    with engine.connect() as connection:
        open_deals = connection.exec_driver_sql(
            "SELECT id, lead_id, stage, owner FROM deals WHERE closed_at IS NULL AND stage IN ('sal', 'sql') "
            f"ORDER BY id DESC LIMIT {moves}").all()
        at = writer.time(NOW.timestamp() - 60)
        next_stage = {"sal": "sql", "sql": "opportunity"}
        writer.write(connection, "stage_changes", CHANGE_COLUMNS,
                     [(lead, stage, next_stage[stage], at, owner, None) for _, lead, stage, owner in open_deals])
        writer.write(connection, "deal_activity", ACTIVITY_COLUMNS,
                     [(deal, "moved", at, owner, stage, next_stage[stage], None, None, None)
                      for deal, _, stage, owner in open_deals])
        for deal, lead, stage, _ in open_deals:
            connection.exec_driver_sql(f"UPDATE leads SET stage = '{next_stage[stage]}' WHERE id = {lead}")
            connection.exec_driver_sql(f"UPDATE deals SET stage = '{next_stage[stage]}' WHERE id = {deal}")
        connection.commit()
    started = time.perf_counter()
    done = refresh(engine, _playbook(), NOW)
    seconds = time.perf_counter() - started
    print(f"  catch-up: {done.leads:,} leads recomputed ({len(open_deals):,} moved)", file=sys.stderr)
    return seconds


# --- running ---------------------------------------------------------------------------------


def run(store: str, url: str, leads: int, seed: int, reuse: bool) -> dict[str, Any]:
    from leadrelay.adapters.analytics import refresh

    engine = make_engine(url)
    try:
        setup: dict[str, float] = {}
        if not reuse:
            started = time.perf_counter()
            migrate(engine)
            setup["migrating"] = time.perf_counter() - started
            print(f"{store}: generating {leads:,} leads", file=sys.stderr)
            setup.update(generate(engine, leads, seed))
        started = time.perf_counter()
        built = refresh(engine, _playbook(), NOW, progress=_progress)
        print(file=sys.stderr)
        setup[f"building the analytics tables ({built.leads:,} leads)"] = time.perf_counter() - started
        if engine.dialect.name == "postgresql":  # as autovacuum would after such a load
            started = time.perf_counter()
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE lead_facts, stage_spans, stage_reached, attribution, "
                                           "lead_content")
            setup["VACUUM ANALYZE of the analytics tables"] = time.perf_counter() - started
        measured = subprocess.run([sys.executable, __file__, "--measure", url], check=True, capture_output=True,
                                  text=True)
        results = json.loads(measured.stdout.strip().splitlines()[-1])
        setup["catching up after 1,000 moves"] = catch_up(engine)
        results["setup"] = setup
        return results
    finally:
        engine.dispose()


def _progress(done: int, total: int) -> None:
    print(f"\r  analytics tables: {done:,} / {total:,} leads", end="", file=sys.stderr, flush=True)


RECORDED: list[dict[str, Any]] = []


def _record(store: str, results: dict[str, Any], leads: int) -> None:
    count = statistics.median(results["count_events"])
    for name, seconds in results["reports"].items():
        if name.startswith("meeting"):
            continue
        median = statistics.median(seconds)
        RECORDED.append({"what": f"report: {name}", "store": "SQLite" if store == "sqlite" else "PostgreSQL",
                         "value": median, "unit": "s", "limit": count, "limit_what": "SELECT count(*) FROM events, s",
                         "target": f"<= {TARGET_SECONDS:.0f} s", "met": median <= TARGET_SECONDS, "leads": leads,
                         "peak_mb": results["peak_memory_mb"]})


def report(store: str, results: dict[str, Any], leads: int) -> None:
    _record(store, results, leads)
    print(f"\n## {store}: {leads:,} leads, {results['events']:,} events")
    for step, seconds in results["setup"].items():
        print(f"  {step}: {seconds:,.1f} s")
    count = results["count_events"]
    print(f"\n  {'report | period':<52} {'median':>9} {'slowest':>9}   target {TARGET_SECONDS:.0f} s")
    print(f"  {'SELECT count(*) FROM events (the raw store)':<52} {statistics.median(count):>8.3f}s {max(count):>8.3f}s")
    for name, seconds in results["reports"].items():
        verdict = "met" if statistics.median(seconds) <= TARGET_SECONDS else "MISSED"  # (the first run may be cold)
        if name.startswith("meeting"):
            verdict = "(not a target: every report, both periods)"
        print(f"  {name:<52} {statistics.median(seconds):>8.3f}s {max(seconds):>8.3f}s   {verdict}")
    memory = results["peak_memory_mb"]
    print(f"  peak memory of the measuring process: {memory:,.0f} MB "
          f"({'met' if memory <= TARGET_MEMORY_MB else 'MISSED'}: {TARGET_MEMORY_MB} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite-path", type=Path, default=None, help="Where the SQLite file goes (default: a "
                                                                       "temporary folder).")
    parser.add_argument("--keep", action="store_true", help="Keep the databases (and reuse them when run again).")
    parser.add_argument("--postgres-url", default=os.environ.get("LEADRELAY_TEST_POSTGRES_URL") or POSTGRES_ADMIN_URL,
                        help="A PostgreSQL server (its database is used to create and drop the benchmark's).")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    try:
        _main(args)
    finally:
        if args.json:
            from _results import Results

            out = Results("reports")
            out.rows = RECORDED
            out.write(args.json)


def _main(args: argparse.Namespace) -> None:
    stores = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    for store in stores:
        if store == "sqlite":
            path = args.sqlite_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"leadrelay_reports_{args.leads}.db"
            reuse = args.keep and path.exists()
            if not reuse:
                for old in path.parent.glob(path.name + "*"):
                    old.unlink()
            try:
                report(store, run(store, f"sqlite:///{path}", args.leads, args.seed, reuse), args.leads)
            finally:
                if not args.keep:
                    for old in path.parent.glob(path.name + "*"):
                        old.unlink()
            continue
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                        {"name": POSTGRES_DATABASE}).scalar()
            reuse = bool(exists) and args.keep
            if exists and not reuse:
                connection.execute(text(f"DROP DATABASE {POSTGRES_DATABASE}"))
            if not reuse:
                connection.execute(text(f"CREATE DATABASE {POSTGRES_DATABASE}"))
        url = make_url(args.postgres_url).set(database=POSTGRES_DATABASE).render_as_string(hide_password=False)
        try:
            report(store, run(store, url, args.leads, args.seed, reuse), args.leads)
        finally:
            if not args.keep:
                with admin.connect() as connection:
                    connection.execute(text(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)"))
            admin.dispose()


if __name__ == "__main__":
    main()

"""How fast `leadrelay import events` stores and scores events, beside the raw limit of the store.

    python benchmarks/import_bench.py                  # 200,000 events on SQLite
    python benchmarks/import_bench.py --events 1000000 --database both
    python benchmarks/import_bench.py --quick          # a smoke run in seconds

The raw limit is the same rows written in the same run with nothing but the driver:
SQLite `executemany` into a bare table, PostgreSQL `COPY`. Our figure parses each JSON line,
checks it, resolves its lead, scores it, evaluates the MQL/fast-track/disqualify rules and
stores events, leads and moves in one transaction per batch.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import psycopg
from _results import Results
from sqlalchemy import text

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.files import read_events
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.clock import utc_now
from leadrelay.services.importing import import_rows
from leadrelay.services.unit_of_work import UnitOfWork

POSTGRES_URL = os.environ.get("LEADRELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGES = ["/", "/pricing", "/blog/lead-scoring", "/blog/sla", "/docs", "/careers", "/customers"]
TRACKS = ["Email Opened", "Email Clicked", "Form Submitted", "Download", "Webinar Attended"]
INDUSTRIES = ["software", "fintech", "healthcare", "manufacturing", "retail", "education"]
TITLES = ["VP Marketing", "Head of Sales", "Marketing Manager", "Engineer", "Founder", "Analyst"]


def make_file(path: Path, events: int, per_lead: int, now: datetime, seed: int = 1) -> list[tuple]:
    """A JSON Lines export in time order: each lead identifies, then browses, opens, clicks.
    Returns the raw rows (as the raw-limit runs insert them)."""
    rng = random.Random(seed)
    leads = max(events // per_lead, 1)
    messages = []
    for lead in range(leads):
        email = f"person{lead}@company{lead % 5000}.example"
        start = now - timedelta(days=rng.uniform(1, 180))
        messages.append({
            "type": "identify", "userId": email, "messageId": f"i{lead}", "timestamp": start.isoformat(),
            "traits": {"email": email, "industry": rng.choice(INDUSTRIES), "title": rng.choice(TITLES),
                       "company_size": rng.choice([5, 50, 300, 2000])},
        })
    while len(messages) < events:
        lead = rng.randrange(leads)
        email = f"person{lead}@company{lead % 5000}.example"
        at = now - timedelta(days=rng.uniform(0, 180))
        n = len(messages)
        if rng.random() < 0.55:
            messages.append({"type": "page", "userId": email, "messageId": f"e{n}", "timestamp": at.isoformat(),
                             "properties": {"path": rng.choice(PAGES), "url": "https://example.com/"}})
        else:
            messages.append({"type": "track", "event": rng.choice(TRACKS), "userId": email, "messageId": f"e{n}",
                             "timestamp": at.isoformat(), "properties": {"campaign": "autumn"}})
    messages.sort(key=lambda m: m["timestamp"])
    with path.open("wb") as out:
        for message in messages:
            out.write(orjson.dumps(message) + b"\n")
    return [
        (m["messageId"], m["userId"], m["type"], m.get("event", "page_view"), m["timestamp"],
         orjson.dumps(m.get("properties", {})).decode())
        for m in messages
    ]


def ours(url: str, path: Path, now: datetime) -> tuple[float, int]:
    engine = make_engine(url)
    migrate(engine)
    playbook = parse_playbook(default_playbook_text())
    start = time.perf_counter()
    with path.open("rb") as stream:
        summary = import_rows(lambda: UnitOfWork(engine), playbook, read_events(stream, playbook, now), now)
    seconds = time.perf_counter() - start
    engine.dispose()
    assert not summary.rejected, summary.rejected[:3]
    return seconds, summary.result.stored


RESULTS = Results("import")
RAW_TABLE = "message_id TEXT, user_id TEXT, type TEXT, name TEXT, timestamp TEXT, properties TEXT"


def raw_sqlite(directory: Path, rows: list[tuple]) -> float:
    connection = sqlite3.connect(directory / "raw.db")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"CREATE TABLE raw ({RAW_TABLE})")
    start = time.perf_counter()
    connection.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.commit()
    seconds = time.perf_counter() - start
    connection.close()
    return seconds


def raw_postgres(rows: list[tuple]) -> float:
    with psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg", "postgresql")) as connection:
        connection.execute(f"CREATE TEMP TABLE raw ({RAW_TABLE})")
        start = time.perf_counter()
        with connection.cursor().copy("COPY raw FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - start


def fresh_postgres_database() -> tuple[str, callable]:
    name = f"leadrelay_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events in the file (default 200,000)")
    parser.add_argument("--per-lead", type=int, default=20, help="events per lead on average (default 20)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="20,000 events: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    now = utc_now()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {events:,} events, ~{args.per_lead} per lead")
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = directory / "events.jsonl"
        rows = make_file(path, events, args.per_lead, now)
        print(f"{'store':<12}{'leadrelay import events':>26}{'raw limit':>22}{'share':>8}")
        if args.database in ("sqlite", "both"):
            seconds, stored = ours(f"sqlite:///{directory / 'leadrelay.db'}", path, now)
            raw = raw_sqlite(directory, rows)
            _line("SQLite", stored / seconds, len(rows) / raw, "executemany")
            RESULTS.add("bulk import (stored and scored)", stored / seconds, "events/s", store="SQLite",
                        limit=len(rows) / raw, limit_what="executemany, rows/s", target=">= 100,000",
                        met=stored / seconds >= 100_000, events=events)
        if args.database in ("postgresql", "both"):
            url, drop = fresh_postgres_database()
            try:
                seconds, stored = ours(url, path, now)
            finally:
                drop()
            raw = raw_postgres(rows)
            _line("PostgreSQL", stored / seconds, len(rows) / raw, "COPY")
            RESULTS.add("bulk import (stored and scored)", stored / seconds, "events/s", store="PostgreSQL",
                        limit=len(rows) / raw, limit_what="COPY, rows/s", target=">= 50,000",
                        met=stored / seconds >= 50_000, events=events)
    RESULTS.write(args.json)
    return 0


def _line(store: str, ours_rate: float, raw_rate: float, how: str) -> None:
    print(f"{store:<12}{ours_rate:>18,.0f} events/s{raw_rate:>12,.0f} rows/s ({how}){ours_rate / raw_rate:>7.0%}")


if __name__ == "__main__":
    raise SystemExit(main())

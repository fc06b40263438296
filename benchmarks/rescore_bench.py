"""How fast `leadrelay rescore` recomputes every lead's scores, and its peak memory, beside the raw
limit of the store measured in the same run. Target: 1,000,000 leads in at most 10 s, at most 2 GB.

    python benchmarks/rescore_bench.py                         # 1,000,000 leads, 4 events each, SQLite
    python benchmarks/rescore_bench.py --database both
    python benchmarks/rescore_bench.py --leads 20000 --quick   # a smoke run in seconds
    python benchmarks/rescore_bench.py --profile out.html      # pyinstrument profile of the rescore

Setup (not measured): a fresh, migrated database filled in bulk through the driver (`executemany`
on SQLite, `COPY` on PostgreSQL) with N leads (industry, title, company size; stage `lead`) and K
events each (page views of the pricing page and others, email opens and clicks, forms, downloads,
webinars, over the last 90 days), as an import would have stored them but with scores of an older
playbook. Then, in a process of its own (its peak resident memory is the figure), the same function
`leadrelay rescore` calls (`rescore_all`: every lead's fit from its fields and its engagement from
its whole history under the built-in playbook, the MQL/fast-track/disqualify rules, hand-offs, and
the changed leads and event points written back, one transaction per chunk of leads), timed twice:
the first run changes every lead (a new playbook), the second changes nothing (the same playbook
again). Beside it, the raw limit: the same process reads the same lead and event rows with the bare
driver (no decoding), and writes every lead's scores back with one `executemany` UPDATE.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from import_bench import fresh_postgres_database

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.domain.clock import UTC, utc_now

POSTGRES_URL = os.environ.get("LEADRELAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_SECONDS, TARGET_MB = 10.0, 2048
INDUSTRIES = ["software", "fintech", "healthcare", "manufacturing", "retail", "education"]
TITLES = ["VP Marketing", "Head of Sales", "Marketing Manager", "Engineer", "Founder", "Analyst"]
EVENTS = [("page", "page_view", {"path": "/pricing"}), ("page", "page_view", {"path": "/blog/sla"}),
          ("page", "page_view", {"path": "/careers"}), ("track", "email_opened", {"campaign": "autumn"}),
          ("track", "email_clicked", {"campaign": "autumn"}), ("track", "form_submitted", {}),
          ("track", "downloaded", {"asset": "guide"}), ("track", "webinar_attended", {})]
CHUNK = 20_000


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def fill(url: str, leads: int, per_lead: int, now: datetime, seed: int = 3) -> int:
    """Write the leads and their events in bulk; returns the number of events."""
    engine = make_engine(url)
    migrate(engine)
    sqlite = engine.dialect.name == "sqlite"
    at = _sqlite_time if sqlite else (lambda moment: moment)
    rng = random.Random(seed)
    written = 0
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        for first in range(1, leads + 1, CHUNK):
            lead_rows, event_rows = [], []
            for lead_id in range(first, min(first + CHUNK, leads + 1)):
                created = now - timedelta(days=90 + rng.random() * 30)
                fields = {"industry": rng.choice(INDUSTRIES), "title": rng.choice(TITLES),
                          "company_size": rng.choice([5, 50, 300, 2000])}
                lead_rows.append((lead_id, f"person{lead_id}@company{lead_id % 50_000}.example", "lead", "lead",
                                  at(created), at(created), at(created), orjson.dumps(fields).decode(), 0.0, "{}", 0.0,
                                  None, "{}"))
                for _ in range(per_lead):
                    kind, name, properties = rng.choice(EVENTS)
                    moment = now - timedelta(days=rng.random() * 90)
                    written += 1
                    event_rows.append((f"m{written}", lead_id, f"person{lead_id}@company{lead_id % 50_000}.example",
                                       kind, name, at(moment), at(moment), orjson.dumps(properties).decode(), 0.0))
            lead_columns = ("id, email, stage, highest_stage, stage_entered_at, created_at, updated_at, fields, fit,"
                            " fit_breakdown, engagement, engagement_as_of, engagement_rules")
            event_columns = "message_id, lead_id, user_id, type, name, timestamp, received_at, properties, points"
            if sqlite:
                driver.executemany(f"INSERT INTO leads ({lead_columns}) VALUES ({', '.join('?' * 13)})", lead_rows)
                driver.executemany(f"INSERT INTO events ({event_columns}) VALUES ({', '.join('?' * 9)})", event_rows)
            else:
                with driver.cursor() as cursor:
                    with cursor.copy(f"COPY leads ({lead_columns}) FROM STDIN") as copy:
                        for row in lead_rows:
                            copy.write_row(row)
                    with cursor.copy(f"COPY events ({event_columns}) FROM STDIN") as copy:
                        for row in event_rows:
                            copy.write_row(row)
            driver.commit()
            print(f"\r  {min(first + CHUNK - 1, leads):,} leads written", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if sqlite:
            driver.execute("ANALYZE")
        else:
            driver.execute("SELECT setval(pg_get_serial_sequence('leads', 'id'), (SELECT max(id) FROM leads))")
            driver.commit()
            driver.autocommit = True
            driver.execute("VACUUM ANALYZE leads")
            driver.execute("VACUUM ANALYZE events")
    finally:
        raw.close()
        engine.dispose()
    return written


def measure(url: str, profile: str | None) -> dict[str, Any]:
    """In this (fresh) process: the rescore twice, then the raw limit on the same rows."""
    from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
    from leadrelay.services.leads import rescore_all
    from leadrelay.services.unit_of_work import UnitOfWork

    engine = make_engine(url)
    playbook = parse_playbook(default_playbook_text())
    now = utc_now()
    results: dict[str, Any] = {}
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    for label in ("changed", "unchanged"):
        start = time.perf_counter()
        done = rescore_all(lambda: UnitOfWork(engine), playbook, now)
        results[f"rescore_{label}_seconds"] = time.perf_counter() - start
        results["leads"] = done
        if profiler is not None:
            profiler.stop()
            Path(profile).write_text(profiler.output_html())  # type: ignore[arg-type]
            profiler = None
    results["rescore_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the raw limit: read the same rows with the bare driver, write every lead's scores back
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        start = time.perf_counter()
        cursor = driver.cursor()
        cursor.execute("SELECT id, fields, fit_breakdown, engagement_rules FROM leads")
        ids = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT lead_id, name, timestamp, properties FROM events")
        events = 0
        while batch := cursor.fetchmany(100_000):
            events += len(batch)
        marker = "?" if engine.dialect.name == "sqlite" else "%s"
        cursor.executemany(f"UPDATE leads SET fit = {marker}, engagement = {marker} WHERE id = {marker}",
                           [(1.0, 2.0, lead_id) for lead_id in ids])
        driver.commit()
        results["raw_seconds"] = time.perf_counter() - start
        results["events"] = events
    finally:
        raw.close()
    engine.dispose()
    return results




def run_store(store: str, url: str, leads: int, per_lead: int, profile: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    events = fill(url, leads, per_lead, utc_now())
    setup = time.perf_counter() - started
    command = [sys.executable, __file__, "--measure", url]
    if profile:
        command += ["--profile", profile]
    answer = subprocess.run(command, capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{answer.stderr[-3000:]}")
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    result.update(store=store, setup_seconds=setup, events_written=events)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000, help="leads (default 1,000,000)")
    parser.add_argument("--events-per-lead", type=int, default=4, help="events per lead (default 4)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="20,000 leads: a smoke run")
    parser.add_argument("--profile", metavar="FILE", help="write a pyinstrument profile (HTML) of the first rescore")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results as JSON to FILE")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.profile)))
        return 0
    leads = 20_000 if args.quick else args.leads
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {leads:,} leads, {args.events_per_lead} events "
          "each; the built-in playbook")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        if args.database in ("sqlite", "both"):
            results.append(run_store("SQLite", f"sqlite:///{Path(folder) / 'rescore.db'}", leads,
                                     args.events_per_lead, args.profile))
        if args.database in ("postgresql", "both"):
            url, drop = fresh_postgres_database()
            try:
                results.append(run_store("PostgreSQL", url, leads, args.events_per_lead, args.profile))
            finally:
                drop()
    print(f"{'store':<12}{'rescore (all change)':>22}{'(none change)':>15}{'leads/s':>11}{'peak MB':>9}"
          f"{'raw limit':>11}   target {TARGET_SECONDS:g} s / {TARGET_MB:,} MB (scaled to 1M leads)")
    for r in results:
        scaled = r["rescore_changed_seconds"] * 1_000_000 / max(r["leads"], 1)
        verdict = "met" if scaled <= TARGET_SECONDS and r["rescore_peak_mb"] <= TARGET_MB else "missed"
        print(f"{r['store']:<12}{r['rescore_changed_seconds']:>20.2f} s{r['rescore_unchanged_seconds']:>13.2f} s"
              f"{r['leads'] / r['rescore_changed_seconds']:>11,.0f}{r['rescore_peak_mb']:>9,.0f}{r['raw_seconds']:>9.2f} s"
              f"   {verdict} (1M leads: ~{scaled:,.0f} s)")
    if args.json:
        from _results import Results

        out = Results("rescore")
        for r in results:
            scaled = r["rescore_changed_seconds"] * 1_000_000 / max(r["leads"], 1)
            out.add(f"rescore {r['leads']:,} leads ({args.events_per_lead} events each), all change",
                    r["rescore_changed_seconds"], "s", store=r["store"], limit=r["raw_seconds"],
                    limit_what="bare driver: read the same rows, write every lead back, s",
                    target="<= 10 s for 1M leads", met=scaled <= TARGET_SECONDS, scaled_to_1m_seconds=scaled,
                    peak_mb=r["rescore_peak_mb"], unchanged_seconds=r["rescore_unchanged_seconds"])
            out.add("rescore peak memory", r["rescore_peak_mb"], "MB", store=r["store"], target="<= 2,048 MB",
                    met=r["rescore_peak_mb"] <= TARGET_MB)
        out.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

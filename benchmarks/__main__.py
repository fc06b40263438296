"""The whole benchmark suite, one table: `python -m benchmarks` from a checkout of LeadRelay.

    python -m benchmarks                       # every benchmark at full size, SQLite and PostgreSQL (an hour or more)
    python -m benchmarks --quick               # a smoke run of every benchmark on SQLite, in under a minute
    python -m benchmarks --medium              # about a tenth of the full sizes, both stores (half an hour)
    python -m benchmarks --only import,rescore --database postgresql
    python -m benchmarks --json results.json --markdown results.md

Each benchmark script in this folder runs as a process of its own, with `--json` so that it hands
its figures back; its own full output goes to a log file (shown when it fails). Every figure is
printed beside the raw limit of the store or stack measured in the same run (SQLite `executemany`,
PostgreSQL `COPY`, a bare ASGI app for HTTP, raw SMTP, a bare `SELECT count(*)`), its target, and
the peak memory (resident set) of the benchmark's largest process. The benchmarks are not part of
the installed package: run this from the project folder, with LeadRelay installed in the Python
that runs it (PostgreSQL at LEADRELAY_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]
    quick: list[str]
    medium: list[str] = field(default_factory=list)
    stores: bool = True  # takes --database
    what: str = ""


BENCHES = [
    Bench("import", "import_bench.py", ["--events", "200000"], ["--events", "5000"], ["--events", "100000"],
          what="bulk import events/s, stored and scored, beside executemany / COPY"),
    Bench("http", "http_ingest.py", ["--events", "200000"], ["--events", "2000", "--clients", "4", "--timeout", "60"],
          ["--events", "50000"],
          what="HTTP ingestion events/s (POST /v1/batch), beside a bare ASGI app"),
    Bench("speed", "speed_to_lead.py", ["--leads", "1000"], ["--leads", "30", "--warmup", "3", "--timeout", "60"],
          ["--leads", "300"],
          what="speed to lead p50/p99, beside the HTTP floor"),
    Bench("rescore", "rescore_bench.py", ["--leads", "1000000"], ["--leads", "2000"], ["--leads", "50000"],
          what="leadrelay rescore of 1M leads, peak memory, beside the bare driver"),
    Bench("reports", "reports_bench.py", ["--leads", "1000000"], ["--leads", "1000"], ["--leads", "100000"],
          what="report times on 1M leads, beside SELECT count(*)"),
    Bench("sla", "sla_sweep.py", ["--deals", "100000"], ["--deals", "3000", "--runs", "5", "--scans", "1"],
          ["--deals", "100000", "--runs", "10", "--scans", "2"],
          what="SLA sweep with 100,000 open deals, beside the raw index read"),
    Bench("email", "email_send.py", ["--emails", "10000"], ["--emails", "200"], ["--emails", "3000"], stores=False,
          what="nurture emails/s to a local SMTP server, beside raw SMTP"),
]


@dataclass
class Outcome:
    bench: Bench
    seconds: float
    returncode: int
    peak_mb: float
    log: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run(bench: Bench, args: argparse.Namespace, folder: Path) -> Outcome:
    out, log = folder / f"{bench.name}.json", folder / f"{bench.name}.log"
    sizes = bench.quick if args.quick else bench.medium if args.medium else bench.full
    command = [sys.executable, str(HERE / bench.script), *sizes]
    if bench.stores:
        command += ["--database", args.database]
    elif args.database == "postgresql":
        return Outcome(bench, 0.0, 0, 0.0, log, notes=["SQLite only"])
    command += ["--json", str(out)]
    started = time.perf_counter()
    print(f"  {bench.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=HERE.parent)
        try:
            _, status, usage = os.wait4(process.pid, 0)  # the peak RSS of the script (and the children it waited for)
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
    outcome = Outcome(bench, time.perf_counter() - started, process.returncode, usage.ru_maxrss / 1024, log)
    if out.exists():
        found = json.loads(out.read_text())
        outcome.rows, outcome.notes = found.get("rows", []), found.get("notes", [])
    return outcome


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = next(int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal"))
    except (OSError, StopIteration, ValueError):
        memory = 0
    return {"cores": os.cpu_count(), "cpu": model, "memory_mb": memory, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "system": platform.platform(), "load_average": os.getloadavg()}


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("s",):
        return f"{value:,.2f} s"
    if unit == "ms":
        return f"{value:,.1f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.0f} {unit}"


def table(outcomes: list[Outcome]) -> list[list[str]]:
    rows = [["figure", "store", "LeadRelay", "raw limit, same run", "target", "verdict", "peak MB"]]
    for outcome in outcomes:
        if not outcome.rows:
            state = "skipped" if outcome.notes == ["SQLite only"] else f"FAILED (exit {outcome.returncode}, see log)"
            rows.append([outcome.bench.name, "", state, "", "", "", f"{outcome.peak_mb:,.0f}"])
            continue
        for row in outcome.rows:
            limit = "-" if row.get("limit") is None else f"{_number(row['limit'], row['unit'])} ({row['limit_what']})"
            if row.get("limit") is not None and row["unit"] not in ("ms", "s"):
                limit = f"{row['limit']:,.0f} ({row['limit_what']})"
            verdict = {True: "met", False: "MISSED", None: ""}[row.get("met")]
            peak = row.get("peak_mb") or outcome.peak_mb
            rows.append([row["what"], row.get("store", ""), _number(row["value"], row["unit"]), limit,
                         row.get("target", ""), verdict, f"{peak:,.0f}"])
        if outcome.returncode:
            rows.append([f"{outcome.bench.name}: checks failed (exit {outcome.returncode}, see log)", "", "", "", "",
                         "", ""])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark (< 1 min)")
    parser.add_argument("--medium", action="store_true",
                        help="a tenth of the full sizes or so (50,000 leads to rescore, 100,000 events to import): "
                             "about half an hour for both stores")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default=None,
                        help="stores (default: both; with --quick, sqlite)")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(b.name for b in BENCHES))
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure and the machine as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write the table as Markdown (for the docs)")
    parser.add_argument("--logs", type=Path, metavar="FOLDER", help="keep each benchmark's full output here")
    args = parser.parse_args()
    args.database = args.database or ("sqlite" if args.quick else "both")
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(b.name for b in BENCHES))
    try:
        import leadrelay  # noqa: F401
    except ImportError:
        parser.error("LeadRelay is not installed in this Python: pip install -e . (from the project folder)")
    info = machine()
    print(f"{info['cores']} cores ({info['cpu']}), {info['memory_mb']:,} MB, Python {info['python']}, "
          f"SQLite {info['sqlite']}; load average at start {', '.join(f'{x:.1f}' for x in info['load_average'])}",
          file=sys.stderr)
    outcomes: list[Outcome] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.logs or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        for bench in BENCHES:
            if wanted and bench.name not in wanted:
                continue
            outcomes.append(outcome := run(bench, args, folder))
            if outcome.returncode:
                print(f"  {bench.name} failed (exit {outcome.returncode}); its output ends:\n"
                      + outcome.log.read_text(errors="replace")[-2000:], file=sys.stderr)
        rows = table(outcomes)
    total = time.perf_counter() - started
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))
    size = "quick" if args.quick else "medium" if args.medium else "full"
    print(f"\n{len(outcomes)} benchmark(s) in {total:,.0f} s ({size} sizes); "
          f"load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
        args.markdown.write_text("\n".join(lines) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "sizes": size, "seconds": total, "benchmarks": [
            {"name": o.bench.name, "seconds": o.seconds, "exit": o.returncode, "peak_mb": o.peak_mb, "rows": o.rows,
             "notes": o.notes} for o in outcomes]}, indent=2, default=str))
    return 1 if any(o.returncode for o in outcomes) else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the tracking API (`POST /v1/batch`) stores and scores events, beside the same events
through the in-process batch path and the raw limit of the HTTP stack, all in the same run.

    python benchmarks/http_ingest.py                   # 200,000 events on SQLite, 8 clients
    python benchmarks/http_ingest.py --database both --clients 16
    python benchmarks/http_ingest.py --quick           # 20,000 events: a smoke run
    python benchmarks/http_ingest.py --py-spy out.txt  # and profile the server meanwhile

A real server (`leadrelay serve`) runs in its own process on a fresh database. One client
process (asyncio, httpx) posts the events as Segment batches of 100 messages over N concurrent
connections to 127.0.0.1, retrying after 429 as told by Retry-After; the bodies are serialized
before the clock starts. Our figure counts an event once the server has answered for it, that is
once it is stored and scored. Beside it, measured in the same run:

- in-process: the same events through `to_event` and `ingest`, no HTTP, one transaction per
  request's batch, and one per group as large as the server's writer can form (all clients
  waiting at once);
- bare ASGI: a minimal uvicorn app in its own process that reads and parses the same bodies and
  answers 200, sent by the same client: the limit of the HTTP stack (and of this client).

At the end the server's `events` table is counted: every event must be there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/import_bench.py, for its generator

HOST = "127.0.0.1"
SQLITE_TARGET = 20_000  # events/s on SQLite
KEY_VARIABLE = "LEADRELAY_BENCH_WRITE_KEY"  # hands the write key to the client process
MAX_ATTEMPTS = 100  # sends of one request (the first and the retries after 429)
MAX_RETRY_AFTER = 10.0  # seconds: never wait longer than this for one retry
READY_SECONDS = 60.0  # a server that does not answer by then has failed
STOP_SECONDS = 20.0  # a process that has not stopped by then is killed


# --- the client process --------------------------------------------------------------------


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="http_ingest.py _client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="one request body a line")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    bodies = args.bodies.read_bytes().splitlines()
    key = os.environ.get(KEY_VARIABLE, "")
    result = asyncio.run(_send(args.url, bodies, args.clients, key, args.timeout))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


async def _send(url: str, bodies: list[bytes], clients: int, key: str, timeout: float) -> dict[str, Any]:
    """Post every body once (retrying after 429), over `clients` concurrent connections."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    problems: list[str] = []
    pending = iter(range(len(bodies)))  # shared by the tasks: each body is taken once
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60.0) as client:
        deadline = time.monotonic() + timeout

        async def worker() -> None:
            for index in pending:
                for _ in range(MAX_ATTEMPTS):
                    if time.monotonic() > deadline:
                        counts["unsent"] += 1
                        return
                    began = time.perf_counter()
                    try:
                        response = await client.post("/v1/batch", content=bodies[index])
                    except httpx.HTTPError as error:
                        counts["failed"] += 1
                        problems.append(f"{type(error).__name__}: {error}")
                        break
                    if response.status_code == 429:
                        counts["answered 429"] += 1
                        await asyncio.sleep(_retry_after(response.headers.get("retry-after")))
                        continue
                    if response.status_code != 200:
                        counts["failed"] += 1
                        problems.append(f"{response.status_code} {response.text[:200]}")
                        break
                    latencies.append(time.perf_counter() - began)
                    answer = response.json()
                    counts["requests"] += 1
                    counts["accepted"] += answer.get("accepted", 0)
                    counts["rejected"] += len(answer.get("rejected", ()))
                    break
                else:
                    counts["failed"] += 1
                    problems.append(f"still 429 after {MAX_ATTEMPTS} attempts")

        cpu, start = time.process_time(), time.perf_counter()
        tasks = [asyncio.create_task(worker()) for _ in range(clients)]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout + 60.0)
        except TimeoutError:
            problems.append("requests still running at the time limit")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    counts["unsent"] += sum(1 for _ in pending)
    return {**counts, "seconds": seconds, "client_cpu": cpu, "latencies": _percentiles(latencies),
            "problems": problems[:5]}


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


def _percentiles(latencies: list[float]) -> dict[str, float]:
    if len(latencies) < 2:
        return {"p50": latencies[0] if latencies else 0.0, "p99": latencies[0] if latencies else 0.0}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"p50": cuts[49], "p99": cuts[98]}


# --- the bare ASGI server -------------------------------------------------------------------


async def bare_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """POST /v1/batch: read the body, parse it, answer 200 as the real server would. Nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    status, answer = 404, b'{"code":"not_found","message":"only POST /v1/batch"}'
    if scope["method"] == "POST" and scope["path"] == "/v1/batch":
        batch = orjson.loads(b"".join(chunks))["batch"]
        status, answer = 200, orjson.dumps({"success": True, "accepted": len(batch), "rejected": []})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


def bare_main(argv: list[str]) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="http_ingest.py _bare")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(bare_app, host=HOST, port=args.port, log_level="warning", access_log=False)
    return 0


# --- processes ------------------------------------------------------------------------------


class Processes:
    """The processes this run started; all are stopped on the way out, whatever happens."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, **options)
        self.running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], how: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            process.send_signal(how)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_SECONDS)
        if process in self.running:
            self.running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.running)):
            self.stop(process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers anything at all (a bounded number of tries)."""
    for _ in range(int(READY_SECONDS / 0.1)):
        if process.poll() is not None:
            raise SystemExit(f"the server stopped (exit code {process.returncode}):\n{_tail(log)}")
        try:
            httpx.get(url + "/v1/batch", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer within {READY_SECONDS:.0f} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, where /proc tells it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """What the client measured against one server."""

    events: int
    requests: int
    seconds: float
    p50: float
    p99: float
    answered_429: int
    failed: int
    unsent: int
    problems: list[str]
    client_cores: float
    server_cores: float | None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def run_client(processes: Processes, url: str, bodies: Path, clients: int, timeout: float, key: str,
               server: subprocess.Popen[bytes]) -> Run:
    env = {**os.environ, KEY_VARIABLE: key}
    command = [sys.executable, __file__, "_client", "--url", url, "--bodies", str(bodies),
               "--clients", str(clients), "--timeout", str(timeout)]
    before = cpu_seconds(server.pid)
    client = processes.start(command, env=env, stdout=subprocess.PIPE)
    try:
        output, _ = client.communicate(timeout=timeout + 120.0)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"the client did not finish within {timeout + 120.0:.0f} s") from None
    finally:
        processes.stop(client)
    after = cpu_seconds(server.pid)
    if client.returncode != 0 or not output.strip():
        raise SystemExit(f"the client failed (exit code {client.returncode})")
    result = orjson.loads(output.splitlines()[-1])
    seconds = result["seconds"]
    server_cores = (after - before) / seconds if before is not None and after is not None and seconds else None
    return Run(
        events=result.get("accepted", 0), requests=result.get("requests", 0), seconds=seconds,
        p50=result["latencies"]["p50"], p99=result["latencies"]["p99"],
        answered_429=result.get("answered 429", 0), failed=result.get("failed", 0), unsent=result.get("unsent", 0),
        problems=result["problems"], client_cores=result["client_cpu"] / seconds if seconds else 0.0,
        server_cores=server_cores,
    )


# --- the benchmark --------------------------------------------------------------------------


def make_messages(directory: Path, events: int, per_lead: int, now: datetime) -> list[dict[str, Any]]:
    """The import benchmark's time-ordered stream: each lead identifies, then browses, opens, clicks."""
    import import_bench

    path = directory / "events.jsonl"
    import_bench.make_file(path, events, per_lead, now)
    with path.open("rb") as lines:
        return [orjson.loads(line) for line in lines]


def write_bodies(path: Path, batches: list[list[dict[str, Any]]]) -> None:
    with path.open("wb") as out:
        for batch in batches:
            out.write(orjson.dumps({"batch": batch}) + b"\n")


@contextmanager
def fresh_database(kind: str, directory: Path, name: str) -> Iterator[str]:
    """A new, empty database: a file in the temporary folder, or a new PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    import import_bench

    url, drop = import_bench.fresh_postgres_database()
    try:
        yield url
    finally:
        drop()


def create_write_key(url: str) -> str:
    """Build the schema and make a write key (as `leadrelay apikey create` does)."""
    from leadrelay.bootstrap import bootstrap
    from leadrelay.config import Settings
    from leadrelay.domain.clock import utc_now
    from leadrelay.services.api_keys import create_key

    app = bootstrap(Settings(database_url=url))
    try:
        key, _ = create_key(app.uow(), name="bench", scope="write", now=utc_now())
    finally:
        app.engine.dispose()
    return key


def stored_counts(url: str) -> tuple[int, int]:
    from sqlalchemy import text

    from leadrelay.adapters.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            events = connection.execute(text("SELECT count(*) FROM events")).scalar_one()
            leads = connection.execute(text("SELECT count(*) FROM leads")).scalar_one()
    finally:
        engine.dispose()
    return events, leads


def autovacuum(url: str) -> str:
    """PostgreSQL's autovacuum setting: when off, tables are never analyzed during the run."""
    from sqlalchemy import text

    from leadrelay.adapters.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW autovacuum")).scalar_one())
    finally:
        engine.dispose()


def server_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("leadrelay")
    if script.exists():
        return [str(script), "serve", "--host", HOST, "--port", str(port)]
    return [sys.executable, "-c", "from leadrelay.entrypoints.cli import main; main()",
            "serve", "--host", HOST, "--port", str(port)]


def py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--py-spy: py-spy is not installed (pip install py-spy)")
    return found


@dataclass
class Served:
    run: Run
    stored_events: int
    stored_leads: int


def over_http(processes: Processes, url: str, directory: Path, bodies: Path, args: argparse.Namespace,
              profile: Path | None) -> Served:
    """The real server on a fresh database, the client against it, then count what is stored."""
    key = create_write_key(url)
    port = free_port()
    log = directory / "server.log"
    env = {key_: value for key_, value in os.environ.items() if key_ != "LEADRELAY_PLAYBOOK"}
    env["LEADRELAY_DATABASE_URL"] = url  # the built-in playbook: no LEADRELAY_PLAYBOOK, no ./playbook.yaml
    with log.open("wb") as output:
        server = processes.start(server_command(port), env=env, cwd=directory, stdout=output, stderr=subprocess.STDOUT)
    spy = None
    try:
        wait_ready(f"http://{HOST}:{port}", server, log)
        if profile is not None:
            spy = processes.start(
                [py_spy(), "record", "--format", "raw", "--threads", "--rate", "100",
                 "--output", str(profile), "--pid", str(server.pid)], stdout=subprocess.DEVNULL)
            time.sleep(1.0)  # let it attach before the clock starts
        run = run_client(processes, f"http://{HOST}:{port}", bodies, args.clients, args.timeout, key, server)
    finally:
        if spy is not None:
            processes.stop(spy, signal.SIGINT)  # py-spy writes its file when interrupted
        processes.stop(server, signal.SIGINT)
    stored_events, stored_leads = stored_counts(url)
    return Served(run, stored_events, stored_leads)


def bare_limit(processes: Processes, directory: Path, bodies: Path, args: argparse.Namespace) -> Run:
    port = free_port()
    log = directory / "bare.log"
    with log.open("wb") as output:
        server = processes.start([sys.executable, __file__, "_bare", "--port", str(port)],
                                 stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://{HOST}:{port}", server, log)
        return run_client(processes, f"http://{HOST}:{port}", bodies, args.clients, args.timeout, "", server)
    finally:
        processes.stop(server, signal.SIGINT)


def in_process(url: str, groups: list[list[dict[str, Any]]], now: datetime, timeout: float) -> tuple[float, int]:
    """The same events through the batch path the server's writer uses: no HTTP, one transaction a
    group; stops early (after a whole group) at the time limit."""
    from leadrelay.adapters.database import make_engine, migrate
    from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
    from leadrelay.adapters.segment import to_event
    from leadrelay.services.ingest import ingest
    from leadrelay.services.unit_of_work import UnitOfWork

    engine = make_engine(url)
    try:
        migrate(engine)
        playbook = parse_playbook(default_playbook_text())
        stored, start = 0, time.perf_counter()
        for group in groups:
            stored += ingest(UnitOfWork(engine), playbook, [to_event(m, playbook, now) for m in group], now).stored
            if time.perf_counter() - start > timeout:
                break
        return time.perf_counter() - start, stored
    finally:
        engine.dispose()


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        return client_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "_bare":
        return bare_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="events sent (default 200,000)")
    parser.add_argument("--per-lead", type=int, default=20, help="events per lead on average (default 20)")
    parser.add_argument("--batch", type=int, default=100, help="messages per request (default 100)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for each run (default 600)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", dest="profile",
                        help="profile the (first database's) server with py-spy while it runs: collapsed stacks, by thread")
    parser.add_argument("--quick", action="store_true", help="20,000 events: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    if args.quick:
        args.events, args.timeout = 20_000, min(args.timeout, 120.0)
    if min(args.events, args.batch, args.clients) < 1 or args.timeout <= 0:
        parser.error("--events, --batch, --clients and --timeout must be positive")
    if args.profile is not None:
        py_spy()  # before anything starts

    from leadrelay.domain.clock import utc_now

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)  # the processes are stopped by the `finally` below
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started in the background
    processes = Processes()
    with tempfile.TemporaryDirectory() as folder:
        try:
            return _benchmark(processes, Path(folder), args, utc_now())
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            processes.stop_all()


def _benchmark(processes: Processes, directory: Path, args: argparse.Namespace, now: datetime) -> int:
    messages = make_messages(directory, args.events, args.per_lead, now)
    requests = chunks(messages, args.batch)
    bodies = directory / "bodies.jsonl"
    write_bodies(bodies, requests)
    group = args.batch * args.clients
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {len(messages):,} events (~{args.per_lead} per "
          f"lead) in {len(requests):,} requests of {args.batch}, {args.clients} concurrent clients")
    print(f"{'':<12}{'':<34}{'events/s':>10}{'requests/s':>12}{'p50':>9}{'p99':>9}   CPU cores used")

    bare = bare_limit(processes, directory, bodies, args)
    _line("HTTP stack", "bare ASGI (parse, answer 200)", bare)
    stores = [kind for kind in ("sqlite", "postgresql") if args.database in (kind, "both")]
    ok = _problems(bare)
    for kind in stores:
        name = "SQLite" if kind == "sqlite" else "PostgreSQL"
        with fresh_database(kind, directory, "served") as url:
            served = over_http(processes, url, directory, bodies, args, args.profile if kind == stores[0] else None)
            note = f" (autovacuum {autovacuum(url)})" if kind == "postgresql" else ""
        _line(name, "POST /v1/batch (leadrelay serve)", served.run)
        _record(name, served.run, bare, args)
        for label, size in ((f"in-process, {args.batch} a transaction", args.batch),
                            (f"in-process, {group} a transaction", group)):
            with fresh_database(kind, directory, f"in_process_{size}") as url:
                seconds, stored = in_process(url, chunks(messages, size), now, args.timeout)
            cut = f"   stopped at the time limit after {stored:,} events" if stored < len(messages) else ""
            print(f"{'':<12}{label:<34}{stored / seconds:>10,.0f}{cut}")
        share = served.run.rate / bare.rate if bare.rate else 0.0
        print(f"{'':<12}{'share of the bare ASGI limit':<34}{share:>10.1%}")
        if kind == "sqlite":
            verdict = "met" if served.run.rate >= SQLITE_TARGET else "missed"
            print(f"{'':<12}{'target':<34}{SQLITE_TARGET:>10,} ({verdict})")
        complete = served.stored_events == len(messages)
        print(f"{'':<12}stored: {served.stored_events:,} of {len(messages):,} events in the events table, "
              f"{served.stored_leads:,} leads{'' if complete else ' -- EVENTS MISSING'}{note}")
        ok = _problems(served.run) and complete and ok
    if args.profile is not None and args.profile.exists():
        print(f"py-spy profile of the {stores[0]} server: {args.profile}")
    if args.json:
        from _results import Results

        results = Results("http_ingest")
        results.rows = RECORDED
        results.write(args.json)
    return 0 if ok else 1


RECORDED: list[dict[str, Any]] = []


def _record(store: str, run: Run, bare: Run, args: argparse.Namespace) -> None:
    target = SQLITE_TARGET if store == "SQLite" else 20_000
    RECORDED.append({"what": "HTTP ingestion (POST /v1/batch)", "store": store, "value": run.rate, "unit": "events/s",
                     "limit": bare.rate, "limit_what": "bare ASGI app, same client, events/s",
                     "target": f">= {target:,}", "met": run.rate >= target, "p50_ms": run.p50 * 1000,
                     "p99_ms": run.p99 * 1000, "events": args.events, "clients": args.clients,
                     "failed": run.failed + run.unsent})


def _line(store: str, what: str, run: Run) -> None:
    cores = f"server {run.server_cores:.2f}, " if run.server_cores is not None else ""
    print(f"{store:<12}{what:<34}{run.rate:>10,.0f}{run.requests / run.seconds if run.seconds else 0:>12,.0f}"
          f"{run.p50 * 1000:>7.1f}ms{run.p99 * 1000:>7.1f}ms   {cores}client {run.client_cores:.2f}"
          + (f"; {run.answered_429:,} answers 429, retried" if run.answered_429 else ""))


def _problems(run: Run) -> bool:
    """Print what went wrong, if anything; True when nothing did."""
    if run.failed or run.unsent:
        print(f"{'':<12}{run.failed:,} requests failed, {run.unsent:,} not sent (time limit): {run.problems}")
    return not (run.failed or run.unsent)


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed to lead: how soon sales has a qualifying lead, from the HTTP request that carries the
qualifying event to (a) the deal existing with an owner and (b) the `deal.opened` webhook at a
receiver. Targets on loopback: p99 <= 50 ms for (a), <= 250 ms for (b).

    python benchmarks/speed_to_lead.py                      # 1,000 hand-offs on SQLite
    python benchmarks/speed_to_lead.py --database both      # SQLite, then PostgreSQL
    python benchmarks/speed_to_lead.py --quick              # 200 hand-offs: a smoke run
    python benchmarks/speed_to_lead.py --concurrency 4      # and again with 4 clients at once
    python benchmarks/speed_to_lead.py --py-spy out.txt     # and profile the server meanwhile

A real server (`leadrelay serve`) runs in its own process on a fresh database (a file for
SQLite; a new database for PostgreSQL, dropped afterwards), with the built-in default playbook
and LEADRELAY_WORKER_POLL_SECONDS=5, so that only the wake-up at each commit, not the worker's
polling, gets webhooks out quickly. Keys are made with `leadrelay apikey create` (a write key
for the tracking API, an admin key for the REST API).

This process runs a webhook receiver: a threaded HTTP server on 127.0.0.1, subscribed through
`POST /api/v1/webhooks` to `deal.opened`. It notes the arrival time of each delivery (monotonic
clock, the same as the client's), keyed by the lead's email in the body, answers 200 at once,
and checks the Standard Webhooks signature with the subscription's secret.

For each lead, one after another (speed to lead is latency, not throughput): an `identify`
with fit traits, then a `track` "Demo Requested" to /v1/track with the write key (HTTP Basic);
each body is serialized before its clock starts. The default playbook fast-tracks a demo request to `sal`, which hands the lead
to sales: the deal is opened, routed to a rep and its outbox items written in the transaction
that stores the event, and the tracking API answers only once that transaction is committed.
So:

  (a) request -> deal with an owner = the track request's own latency (sent until answered);
  (b) request -> webhook received   = sent until the receiver has the `deal.opened` for the lead.

The client waits (bounded by --webhook-wait) for (b) before the next lead, so hand-offs do not
overlap. Leads are spread over countries so that routing uses the three teams of the default
playbook (half EMEA, 3 in 10 the Americas, 1 in 5 APAC), within the playbook's caps on open deals
per rep up to about 3,000 leads in a run (a lead past a cap waits in the queue without an owner,
and the final check reports it). The first --warmup hand-offs are made but not counted. With
--concurrency K, a second set of leads is then handed off by K clients at once (each client one
lead after another, each with its own keep-alive connection).

Beside them, in the same run and against the same server: the floor of the HTTP stack, a
`POST /v1/track` whose body is not JSON, answered 400 before any key check or database work
(uvicorn, FastAPI routing, the error handler, this client); and the latency of each lead's
`identify` (stored and scored like the demo request, but no hand-off), for what the hand-off
itself adds. The table also shows (b) - (a), how long after the answer the webhook came, and the
CPU used by the server and by this process.

At the end every lead is checked through `GET /api/v1/deals?status=open`: each must have
exactly one open deal, with an owner; and each must have had exactly one `deal.opened`, validly
signed. The default playbook also emails the owner of each new deal ("tell the rep"); no SMTP
server is set unless --smtp-sink is given (then a local sink takes them; needs aiosmtpd), so
the worker tries each, fails at once, and tries again later, as a server without SMTP does.

The exit status is 0 when every check passed (targets met or not), 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_ingest  # the server, process and database helpers

HOST = http_ingest.HOST
TARGET_A = 0.050  # seconds, p99: request -> deal with an owner
TARGET_B = 0.250  # seconds, p99: request -> deal.opened received
POLL_SECONDS = "5"  # the worker's polling: long, so only the commit's wake-up delivers quickly
REQUEST_TIMEOUT = 30.0  # seconds: one HTTP request
KEY_SECONDS = 120.0  # `leadrelay apikey create` (it builds the schema first)
# Half to EMEA, 3 in 10 to the Americas, 1 in 5 to APAC: the default playbook caps open deals per
# rep in the Americas (400 each, 1,600 in all) and APAC (300 each, 600); EMEA has no cap. Past a
# team's cap a lead waits in the queue without an owner, and the final check reports it.
COUNTRIES = ("GB", "US", "DE", "JP", "FR", "CA", "NL", "BR", "SE", "AU")
INDUSTRIES = ("software", "fintech", "healthcare")
TITLES = ("VP Marketing", "Head of Growth", "Director of Sales", "Chief Revenue Officer", "Founder")


# --- the webhook receiver -------------------------------------------------------------------


class Receiver:
    """Takes webhooks on 127.0.0.1; notes when each `deal.opened` arrived, by the lead's email."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrivals: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connection

            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.took(arrived, body, self.headers)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5.0)

    def expect(self, email: str) -> threading.Event:
        """Before the request: an event set when this lead's `deal.opened` arrives."""
        with self._lock:
            done = self._waiting[email] = threading.Event()
            if email in self.arrivals:
                done.set()
        return done

    def took(self, arrived: float, body: bytes, headers: Any) -> None:
        valid = verify(self.secret, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""),
                       body, headers.get("webhook-signature", ""))
        try:
            message = orjson.loads(body)
            email = message["data"]["lead"]["email"]
            kind = message["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            email, kind = None, None
        with self._lock:
            self.counts["received"] += 1
            if not valid:
                self.counts["bad signature"] += 1
            if kind != "deal.opened" or not isinstance(email, str):
                self.counts["not deal.opened"] += 1
                return
            if email in self.arrivals:
                self.counts["repeated"] += 1
                return
            self.arrivals[email] = arrived
            done = self._waiting.pop(email, None)
        if done is not None:
            done.set()


def verify(secret: str, message_id: str, timestamp: str, body: bytes, signatures: str) -> bool:
    """The Standard Webhooks check: one of the `v1,` signatures is HMAC-SHA256 of id.timestamp.body."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except ValueError:
        return False
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    return any(hmac.compare_digest(part.removeprefix("v1,"), expected)
               for part in signatures.split() if part.startswith("v1,"))


# --- the server ---------------------------------------------------------------------------


def leadrelay_command() -> list[str]:
    script = Path(sys.executable).with_name("leadrelay")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from leadrelay.entrypoints.cli import main; main()"]


def server_env(url: str, smtp_port: int | None) -> dict[str, str]:
    """This environment without any LEADRELAY_* setting, then the run's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEADRELAY_")}
    env["LEADRELAY_DATABASE_URL"] = url  # the built-in playbook: no LEADRELAY_PLAYBOOK, no ./playbook.yaml
    env["LEADRELAY_WORKER_POLL_SECONDS"] = POLL_SECONDS
    if smtp_port is not None:
        env["LEADRELAY_SMTP_HOST"], env["LEADRELAY_SMTP_PORT"] = HOST, str(smtp_port)
    return env


def create_key(env: dict[str, str], directory: Path, scope: str) -> str:
    """`leadrelay apikey create`: the key is the last line it prints."""
    try:
        done = subprocess.run([*leadrelay_command(), "apikey", "create", "--name", f"speed-to-lead {scope}",
                               "--scope", scope], env=env, cwd=directory, capture_output=True, timeout=KEY_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"leadrelay apikey create did not finish within {KEY_SECONDS:.0f} s") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"leadrelay apikey create failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return lines[-1].strip()


class SmtpSink:
    """A local SMTP server that takes every email and keeps none (for --smtp-sink)."""

    def __init__(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            raise SystemExit("--smtp-sink needs aiosmtpd (pip install aiosmtpd)") from None
        self.taken = 0

        class Handler:
            async def handle_DATA(_self, server: Any, session: Any, envelope: Any) -> str:
                self.taken += 1
                return "250 OK"

        self.controller = Controller(Handler(), hostname=HOST, port=http_ingest.free_port())

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port


# --- the client -----------------------------------------------------------------------------


@dataclass
class Lead:
    email: str
    identify: bytes
    track: bytes


def make_leads(prefix: str, count: int) -> list[Lead]:
    """Leads with a good fit, spread over countries (so over the three teams), bodies serialized."""
    leads = []
    for index in range(count):
        email = f"{prefix}{index}@company{index % 97}.example"
        traits = {"email": email, "name": f"Lead {index}", "title": TITLES[index % len(TITLES)],
                  "company": f"Company {index % 97}", "industry": INDUSTRIES[index % len(INDUSTRIES)],
                  "company_size": 200 + index % 800, "country": COUNTRIES[index % len(COUNTRIES)],
                  "timeframe": "this quarter"}
        leads.append(Lead(
            email,
            orjson.dumps({"userId": email, "traits": traits, "messageId": uuid.uuid4().hex}),
            orjson.dumps({"userId": email, "event": "Demo Requested", "messageId": uuid.uuid4().hex,
                          "properties": {"page": "/demo"}}),
        ))
    return leads


@dataclass
class Timings:
    """What one set of hand-offs measured, in seconds."""

    identified: list[float] = field(default_factory=list)  # the identify before: no hand-off
    answered: list[float] = field(default_factory=list)  # (a)
    received: list[float] = field(default_factory=list)  # (b)
    after: list[float] = field(default_factory=list)  # (b) - (a): the webhook after the answer
    failed: list[str] = field(default_factory=list)
    no_webhook: int = 0
    unsent: int = 0
    seconds: float = 0.0
    server_cores: float | None = None
    client_cores: float = 0.0  # this process: the clients and the receiver


def client(url: str, key: str) -> httpx.Client:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, trust_env=False,
                        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})


def hand_off(http: httpx.Client, receiver: Receiver, lead: Lead, wait: float, timings: Timings | None,
             lock: threading.Lock) -> None:
    """One lead: identify, then the demo request and its webhook."""
    began = time.monotonic()
    answer = http.post("/v1/identify", content=lead.identify)
    identified = time.monotonic() - began
    if answer.status_code != 200:
        with lock:
            if timings is not None:
                timings.failed.append(f"identify {answer.status_code} {answer.text[:200]}")
        return
    arrived = receiver.expect(lead.email)
    began = time.monotonic()
    answer = http.post("/v1/track", content=lead.track)
    answered = time.monotonic() - began
    ok = answer.status_code == 200 and answer.json().get("accepted") == 1
    received = arrived.wait(wait)
    if timings is None:
        return
    with lock:
        if not ok:
            timings.failed.append(f"track {answer.status_code} {answer.text[:200]}")
            return
        timings.identified.append(identified)
        timings.answered.append(answered)
        if received:
            timings.received.append(receiver.arrivals[lead.email] - began)
            timings.after.append(timings.received[-1] - answered)
        else:
            timings.no_webhook += 1


def hand_offs(url: str, key: str, receiver: Receiver, leads: list[Lead], clients: int, wait: float,
              deadline: float, server_pid: int, warmup: int = 0) -> Timings:
    """Every lead handed off, by `clients` clients at once, each one lead after another."""
    timings, lock = Timings(), threading.Lock()
    pending: Iterator[Lead] = iter(leads)
    next_lead = threading.Lock()

    def run(measured: Timings | None, items: Iterator[Lead], stop: float) -> None:
        with client(url, key) as http:
            while time.monotonic() < stop:
                with next_lead:
                    lead = next(items, None)
                if lead is None:
                    return
                try:
                    hand_off(http, receiver, lead, wait, measured, lock)
                except httpx.HTTPError as error:
                    with lock:
                        if measured is not None:
                            measured.failed.append(f"{type(error).__name__}: {error}")

    if warmup:
        run(None, iter(leads[:warmup]), deadline)
        pending = iter(leads[warmup:])
    before, start, cpu = http_ingest.cpu_seconds(server_pid), time.monotonic(), time.process_time()
    threads = [threading.Thread(target=run, args=(timings, pending, deadline), daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0) + REQUEST_TIMEOUT + wait + 5.0)
    timings.seconds = time.monotonic() - start
    timings.client_cores = (time.process_time() - cpu) / timings.seconds if timings.seconds else 0.0
    after = http_ingest.cpu_seconds(server_pid)
    if before is not None and after is not None and timings.seconds:
        timings.server_cores = (after - before) / timings.seconds
    with next_lead:
        timings.unsent = sum(1 for _ in pending)
    return timings


def floor(url: str, requests: int, clients: int) -> list[float]:
    """The HTTP stack alone: POST /v1/track with a body that is not JSON, answered 400 before any
    key check or database work."""
    latencies: list[float] = []
    wrong: list[str] = []
    lock = threading.Lock()
    per_client = -(-requests // clients)

    def run() -> None:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, trust_env=False) as http:
            mine = []
            for _ in range(per_client):
                began = time.monotonic()
                answer = http.post("/v1/track", content=b"not json", headers={"Content-Type": "application/json"})
                mine.append(time.monotonic() - began)
                if answer.status_code != 400:
                    wrong.append(f"{answer.status_code} {answer.text[:200]}")
                    return
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT * per_client)
    if wrong or len(latencies) < per_client * clients:
        raise SystemExit(f"the floor requests were not all answered 400: {wrong[:1]}")
    return latencies


def subscribe(url: str, admin: str, receiver: Receiver) -> None:
    answer = httpx.post(f"{url}/api/v1/webhooks", headers={"Authorization": f"Bearer {admin}"}, trust_env=False,
                        json={"name": "speed to lead", "url": receiver.url, "events": ["deal.opened"]},
                        timeout=REQUEST_TIMEOUT)
    if answer.status_code != 201:
        raise SystemExit(f"subscribing the receiver failed: {answer.status_code} {answer.text[:300]}")
    receiver.secret = answer.json()["secret"]


def open_deals(url: str, admin: str) -> dict[str, list[dict[str, Any]]]:
    """Every open deal, by its lead's email (through the REST API, a page of 500 at a time)."""
    deals: dict[str, list[dict[str, Any]]] = {}
    cursor = None
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, trust_env=False,
                      timeout=REQUEST_TIMEOUT) as http:
        for _ in range(10_000):  # pages: bounded
            params: dict[str, Any] = {"status": "open", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            answer = http.get("/api/v1/deals", params=params)
            if answer.status_code != 200:
                raise SystemExit(f"GET /api/v1/deals answered {answer.status_code}: {answer.text[:300]}")
            page = answer.json()
            for deal in page["items"]:
                deals.setdefault(deal["email"], []).append(deal)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return deals


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Result:
    """One store's run."""

    floor: list[float]
    sequential: Timings
    concurrent: Timings | None
    concurrent_floor: list[float]
    checked: list[str]  # problems found by the final checks (empty: all good)
    leads: int
    webhooks: Counter[str]
    emails: int | None


def percentiles(values: list[float]) -> tuple[float, float, float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[89], cuts[98], max(values)


def run_store(processes: http_ingest.Processes, kind: str, directory: Path, args: argparse.Namespace,
              profile: Path | None) -> Result:
    with ExitStack() as stack:
        url = stack.enter_context(http_ingest.fresh_database(kind, directory, "speed_to_lead"))
        receiver = stack.enter_context(Receiver())
        sink = stack.enter_context(SmtpSink()) if args.smtp_sink else None
        return _against_server(processes, url, directory, args, profile, receiver, sink)


def concurrent_profile(profile: Path) -> Path:
    return profile.with_name(f"{profile.stem}-concurrent{profile.suffix}")


def start_py_spy(processes: http_ingest.Processes, output: Path, pid: int) -> subprocess.Popen[bytes]:
    spy = processes.start([http_ingest.py_spy(), "record", "--format", "raw", "--threads", "--rate", "100",
                           "--output", str(output), "--pid", str(pid)], stdout=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach before the clock starts
    return spy


def _against_server(processes: http_ingest.Processes, url: str, directory: Path, args: argparse.Namespace,
                    profile: Path | None, receiver: Receiver, sink: SmtpSink | None) -> Result:
    env = server_env(url, sink.port if sink else None)
    write_key, admin_key = create_key(env, directory, "write"), create_key(env, directory, "admin")
    port = http_ingest.free_port()
    base = f"http://{HOST}:{port}"
    log = directory / "server.log"
    with log.open("wb") as output:
        server = processes.start([*leadrelay_command(), "serve", "--host", HOST, "--port", str(port)],
                                 env=env, cwd=directory, stdout=output, stderr=subprocess.STDOUT)
    spy = None
    try:
        http_ingest.wait_ready(base, server, log)
        subscribe(base, admin_key, receiver)
        sequential_leads = make_leads("seq", args.warmup + args.leads)
        concurrent_leads = make_leads("con", args.leads) if args.concurrency > 1 else []
        floor(base, 50, 1)  # warm the connection and the error path
        floor_times = floor(base, args.leads, 1)
        if profile is not None:
            spy = start_py_spy(processes, profile, server.pid)
        deadline = time.monotonic() + args.timeout
        sequential = hand_offs(base, write_key, receiver, sequential_leads, 1, args.webhook_wait, deadline,
                               server.pid, warmup=args.warmup)
        if spy is not None:
            processes.stop(spy, signal.SIGINT)  # py-spy writes its file when interrupted
            spy = None
        concurrent, concurrent_floor = None, []
        if concurrent_leads:
            concurrent_floor = floor(base, args.leads, args.concurrency)
            if profile is not None:
                spy = start_py_spy(processes, concurrent_profile(profile), server.pid)
            deadline = time.monotonic() + args.timeout
            concurrent = hand_offs(base, write_key, receiver, concurrent_leads, args.concurrency,
                                   args.webhook_wait, deadline, server.pid)
            if spy is not None:
                processes.stop(spy, signal.SIGINT)
                spy = None
        # deliveries of the last leads that went over --webhook-wait, and repeats, have a moment to show
        time.sleep(0.5)
        deals = open_deals(base, admin_key)
    finally:
        if spy is not None:
            processes.stop(spy, signal.SIGINT)
        processes.stop(server, signal.SIGINT)
    leads = sequential_leads + concurrent_leads
    counts: Counter[str] = Counter()
    for lead in leads:
        found = deals.get(lead.email, [])
        if len(found) != 1:
            counts[f"{len(found)} open deals"] += 1
        elif not found[0]["owner"]:
            counts["a deal without an owner (queue)"] += 1
        if lead.email not in receiver.arrivals:
            counts["no deal.opened received"] += 1
    problems = [f"{count:,} leads: {what}" for what, count in counts.items()]
    strangers = len(set(deals) - {lead.email for lead in leads})
    if strangers:
        problems.append(f"{strangers:,} open deals of leads this run did not send")
    webhooks = receiver.counts
    if webhooks["bad signature"]:
        problems.append(f"{webhooks['bad signature']:,} webhooks with a bad signature")
    if webhooks["repeated"]:
        problems.append(f"{webhooks['repeated']:,} deal.opened delivered more than once")
    return Result(floor_times, sequential, concurrent, concurrent_floor, problems, len(leads), Counter(webhooks),
                  sink.taken if sink else None)


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def line(store: str, what: str, values: list[float], target: float | None = None) -> None:
    cuts = percentiles(values)
    if cuts is None:
        print(f"{store:<12}{what:<48}{'(nothing measured)':>40}")
        return
    verdict = ""
    if target is not None:
        verdict = f"   <= {target * 1000:.0f} ms: {'met' if cuts[2] <= target else 'MISSED'}"
    print(f"{store:<12}{what:<48}" + "".join(f"{_ms(v):>11}" for v in cuts) + verdict)


RECORDED: list[dict[str, object]] = []


def _record(name: str, label: str, values: list[float], floor_values: list[float], target: float) -> None:
    cuts, floor_cuts = percentiles(values), percentiles(floor_values)
    if cuts is None:
        return
    for index, which in ((0, "p50"), (2, "p99")):
        RECORDED.append({"what": f"speed to lead {label} {which}", "store": name, "value": cuts[index] * 1000,
                         "unit": "ms", "limit": floor_cuts[index] * 1000 if floor_cuts else None,
                         "limit_what": "HTTP floor (400 before any database work), ms",
                         "target": f"p99 <= {target * 1000:.0f} ms" if which == "p99" else "",
                         "met": cuts[2] <= target if which == "p99" else None, "hand_offs": len(values)})


def report(name: str, result: Result, args: argparse.Namespace) -> bool:
    seq = result.sequential
    _record(name, "(a) request -> deal with an owner", seq.answered, result.floor, TARGET_A)
    _record(name, "(b) request -> webhook received", seq.received, result.floor, TARGET_B)
    line(name, "floor: POST /v1/track, not JSON -> 400", result.floor)
    line("", "identify of the lead, just before (no hand-off)", seq.identified)
    line("", "(a) request -> deal with an owner", seq.answered, TARGET_A)
    line("", "(b) request -> deal.opened received", seq.received, TARGET_B)
    line("", "    (b) - (a): webhook after the answer", seq.after)
    print(f"{'':<12}{len(seq.answered):,} hand-offs one after another in {seq.seconds:.1f} s{_cores(seq)}")
    ok = _problems(seq)
    if result.concurrent is not None:
        con, k = result.concurrent, args.concurrency
        line("", f"{k} clients: floor", result.concurrent_floor)
        line("", f"{k} clients: (a) request -> deal with an owner", con.answered, TARGET_A)
        line("", f"{k} clients: (b) request -> deal.opened received", con.received, TARGET_B)
        rate = len(con.answered) / con.seconds if con.seconds else 0.0
        print(f"{'':<12}{len(con.answered):,} hand-offs by {k} clients in {con.seconds:.1f} s "
              f"({rate:.0f} a second){_cores(con)}")
        ok = _problems(con) and ok
    emails = f"; {result.emails:,} owner emails taken by the SMTP sink" if result.emails is not None else ""
    if result.checked:
        print(f"{'':<12}CHECKS FAILED: " + "; ".join(result.checked))
    else:
        print(f"{'':<12}checked: {result.leads:,} leads (warm-up included), each with one open deal and an owner; "
              f"{result.webhooks['received']:,} webhooks received, signatures valid{emails}")
    return ok and not result.checked


def _cores(timings: Timings) -> str:
    server = f"server {timings.server_cores:.2f}, " if timings.server_cores is not None else ""
    return f"; CPU cores used: {server}client and receiver {timings.client_cores:.2f}"


def _problems(timings: Timings) -> bool:
    if timings.failed:
        print(f"{'':<12}{len(timings.failed):,} hand-offs failed: {timings.failed[:3]}")
    if timings.no_webhook:
        print(f"{'':<12}{timings.no_webhook:,} deal.opened not received within the wait (left out of (b))")
    if timings.unsent:
        print(f"{'':<12}{timings.unsent:,} leads not sent (time limit)")
    return not (timings.failed or timings.no_webhook or timings.unsent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1000,
                        help="hand-offs measured (default 1,000); with --concurrency, as many again")
    parser.add_argument("--warmup", type=int, default=10, help="hand-offs made first and not counted (default 10)")
    parser.add_argument("--concurrency", type=int, default=1, metavar="K",
                        help="also hand off as many other leads by K clients at once (default 1: only one after another)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite",
                        help="the store (default sqlite); PostgreSQL at LEADRELAY_TEST_POSTGRES_URL, else "
                             "postgresql://postgres@127.0.0.1:5432/test, in a new database dropped afterwards")
    parser.add_argument("--webhook-wait", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for a lead's webhook before giving up on it (default 10)")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="no new hand-off is started after this long, in each phase (default 900)")
    parser.add_argument("--smtp-sink", action="store_true",
                        help="run a local SMTP server for the owner emails of the default playbook (needs aiosmtpd); "
                             "without it no SMTP server is set and those emails fail")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", dest="profile",
                        help="profile the (first store's) server with py-spy during the one-after-another hand-offs "
                             "(and, with --concurrency, into FILE-concurrent during the others): "
                             "collapsed stacks, by thread")
    parser.add_argument("--quick", action="store_true", help="200 hand-offs: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    if args.quick:
        args.leads, args.timeout = 200, min(args.timeout, 180.0)
    if args.leads < 1 or args.warmup < 0 or args.concurrency < 1 or args.webhook_wait <= 0 or args.timeout <= 0:
        parser.error("--leads, --concurrency, --webhook-wait and --timeout must be positive, --warmup not negative")
    if args.profile is not None:
        http_ingest.py_spy()  # before anything starts

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)  # the processes are stopped by the `finally` below
    signal.signal(signal.SIGINT, signal.default_int_handler)
    processes = http_ingest.Processes()
    with tempfile.TemporaryDirectory() as folder:
        try:
            return _benchmark(processes, Path(folder), args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        finally:
            processes.stop_all()


def _benchmark(processes: http_ingest.Processes, directory: Path, args: argparse.Namespace) -> int:
    concurrent = f", then {args.leads:,} more by {args.concurrency} clients at once" if args.concurrency > 1 else ""
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.leads:,} hand-offs one after another "
          f"(after {args.warmup} not counted){concurrent}; default playbook, worker polling every {POLL_SECONDS} s, "
          f"{'owner emails to a local SMTP sink' if args.smtp_sink else 'no SMTP server'}")
    print(f"{'':<60}{'p50':>11}{'p90':>11}{'p99':>11}{'max':>11}")
    stores = [kind for kind in ("sqlite", "postgresql") if args.database in (kind, "both")]
    ok = True
    for kind in stores:
        result = run_store(processes, kind, directory, args, args.profile if kind == stores[0] else None)
        ok = report("SQLite" if kind == "sqlite" else "PostgreSQL", result, args) and ok
    if args.json:
        from _results import Results

        results = Results("speed_to_lead")
        results.rows = RECORDED  # type: ignore[assignment]
        results.write(args.json)
    for profile in (args.profile, concurrent_profile(args.profile) if args.profile else None):
        if profile is not None and profile.exists():
            print(f"py-spy profile of the {stores[0]} server: {profile}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

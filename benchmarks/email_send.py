"""Nurture email throughput: render and hand to SMTP 10,000 emails, against a local SMTP server.

    python benchmarks/email_send.py [--emails 10000] [--database-url URL]

Sets up N new leads (each enters the default playbook's welcome sequence), then times what the
worker does for them: the nurture step (each email rendered from its templates with tracked links,
open pixel, unsubscribe link and headers, and written with its send record and its run's next step
to the outbox, in batches) and the outbox delivery (claimed, checked against the suppression list
and the leads' stages, sent over SMTP, each result recorded). The SMTP server is aiosmtpd in a
process of its own on 127.0.0.1.

In the same run it sends the same number of messages, already written out as bytes, straight through
smtplib to the same server over the same connections (a round of 500 shared by 4 connections side by
side, as the outbox does): the raw SMTP time. LeadRelay's overhead per email is the difference. Target: at least 500 emails/s end to end.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.email import SmtpSender, SmtpSettings
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.adapters.segment import to_event
from leadrelay.adapters.webhooks import WebhookSender
from leadrelay.config import Settings
from leadrelay.domain.clock import UTC
from leadrelay.domain.nurture import RateLimits
from leadrelay.services import nurture
from leadrelay.services.delivery import Deliverer, Policy
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

ROUND = 500
CONNECTIONS = Policy().smtp_connections  # SMTP connections side by side, as the worker opens them by default
SERVER = textwrap.dedent("""
    import sys, time
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print(sys.argv[1], flush=True)
    sys.stdin.read()  # until the benchmark closes it
    controller.stop()
""")


def smtp_server() -> tuple[subprocess.Popen[str], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def raw_smtp(port: int, count: int) -> float:
    """Seconds to send `count` messages already written out as bytes (text and HTML, the size of the nurture
    emails) with smtplib's sendmail: the SMTP conversation alone."""
    import smtplib

    messages = []
    for index in range(count):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "news@relay.example", f"p{index}@acme{index % 50}.example", "Hi"
        message.set_content("Hello, here is a guide: https://www.leadrelay.example/guides/start\n" * 4)
        message.add_alternative("<p>Hello, here is <a href='https://relay.example/email/click/x'>a guide</a></p>" * 4,
                                subtype="html")
        messages.append((message["To"], message.as_bytes(policy=SMTP)))
    def lane(share: list[tuple[str, bytes]]) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
        for to, data in share:
            smtp.sendmail("news@relay.example", [to], data)
        smtp.quit()

    started = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for start in range(0, count, ROUND):  # as the outbox does: a round, its emails over a few connections
            chunk = messages[start:start + ROUND]
            list(pool.map(lane, [chunk[i::CONNECTIONS] for i in range(CONNECTIONS)]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--database-url", default="", help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--quick", action="store_true", help="1,000 emails: a smoke run")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    args = parser.parse_args()
    count = 1_000 if args.quick else args.emails

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(url)
        migrate(engine)
        playbook = parse_playbook(default_playbook_text())
        now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

        def uow() -> UnitOfWork:
            return UnitOfWork(engine)

        print(f"Setting up {count:,} new leads (each enters the welcome sequence) on {engine.dialect.name} ...")
        for start in range(0, count, 2000):
            batch = [{"type": "identify", "userId": f"u{i}", "timestamp": now.isoformat(),
                      "traits": {"email": f"person{i}@acme{i % 50}.example", "name": f"Person {i}", "company": "Acme"}}
                     for i in range(start, min(start + 2000, count))]
            ingest(uow(), playbook, [to_event(message, playbook, now) for message in batch], now)

        process, port = smtp_server()
        try:
            settings = nurture.NurtureSettings(limits=RateLimits(), quiet=None, batch=ROUND)
            signer = nurture.link_signer(uow, Settings(public_url="https://relay.example"), now)
            sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=port, timeout=10))
            deliverer = Deliverer(uow, webhooks=WebhookSender(), email=sender, policy=Policy(batch=ROUND),
                                  screen=lambda unit, items: nurture.screen(unit, playbook, items))

            started = time.perf_counter()
            rendering = delivering = 0.0
            sent = 0
            while True:  # as the worker does: a round of due steps, then the outbox
                mark = time.perf_counter()
                advanced = nurture.advance(uow, playbook, settings, signer, now)
                rendering += time.perf_counter() - mark
                mark = time.perf_counter()
                while (delivered := deliverer.deliver_due(now + timedelta(seconds=1))):
                    sent += delivered
                delivering += time.perf_counter() - mark
                if not advanced:
                    break
            total = time.perf_counter() - started
            raw = raw_smtp(port, count)
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout=10)
        engine.dispose()

    assert sent == count, f"{sent} emails delivered, expected {count}"
    rate = count / total
    print(f"\n{count:,} nurture emails rendered and handed to SMTP in {total:.2f} s: {rate:,.0f} emails/s "
          f"({'meets' if rate >= 500 else 'MISSES'} the 500/s target)")
    print(f"  nurture step (render, links, send records, outbox): {rendering:.2f} s  "
          f"({rendering / count * 1000:.3f} ms/email)")
    print(f"  outbox delivery (claim, last checks, SMTP, results): {delivering:.2f} s  "
          f"({delivering / count * 1000:.3f} ms/email)")
    print(f"raw SMTP (smtplib, ready bytes) to the same server, same connections: {raw:.2f} s: {count / raw:,.0f} emails/s "
          f"({raw / count * 1000:.3f} ms/email)")
    print(f"LeadRelay's overhead per email: {(total - raw) / count * 1000:.3f} ms "
          f"({total / raw:.1f}x the raw SMTP time)")
    if args.json:
        from _results import Results

        results = Results("email_send")
        results.add("nurture email send rate", rate, "emails/s", store="SQLite" if not args.database_url else "",
                    limit=count / raw, limit_what="raw SMTP (smtplib, ready bytes), emails/s", target=">= 500",
                    met=rate >= 500, emails=count)
        results.write(args.json)


if __name__ == "__main__":
    main()

"""A person's data over HTTP (SQLite and PostgreSQL): an admin exports and erases a person by
email; the erasure is in the audit log; nobody else may call these; the worker deletes raw
events past the retention setting."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

from leadrelay.adapters import tables
from leadrelay.adapters.segment import to_event
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services.ingest import ingest
from leadrelay.services.unit_of_work import UnitOfWork

from .cli import Run, assert_clean_refusal
from .server import Server, running_server

ANN = "ann.person@acme.example"


def _track_ann(server: Server) -> None:
    with server.tracker() as tracker:
        sent = tracker.post("/v1/batch", json={"batch": [
            {"type": "identify", "userId": "u-ann", "anonymousId": "visitor-ann",
             "traits": {"email": ANN, "name": "Ann Quill Person", "company": "Acme"}},
            {"type": "track", "userId": "u-ann", "event": "Webinar Attended", "properties": {"webinar": "w1"}},
            {"type": "page", "userId": "u-ann", "properties": {"path": "/pricing"}},
        ]})
    assert sent.status_code == 200 and sent.json()["accepted"] == 3, sent.text


def test_an_admin_exports_then_erases_a_person_and_the_erasure_is_audited(server: Server) -> None:
    _track_ann(server)
    with server.admin() as admin:
        lead_id = admin.get("/api/v1/leads").json()["items"][0]["id"]
        exported = admin.get(f"/api/v1/people/{ANN.upper()}/export")
        assert exported.status_code == 200, exported.text
        body = exported.json()
        assert body["emails"] == [ANN] and body["lead_ids"] == [lead_id]
        assert len(body["tables"]["events"]) == 3 and "Ann Quill Person" in exported.text
        assert {row["value"] for row in body["tables"]["identities"]} == {"u-ann", "visitor-ann"}

        erased = admin.delete(f"/api/v1/people/{ANN}")
        assert erased.status_code == 200, erased.text
        assert erased.json()["lead_ids"] == [lead_id] and erased.json()["removed"]["events"] == 3

        lead = admin.get(f"/api/v1/leads/{lead_id}").json()
        assert lead["email"] == f"erased-{lead_id}@erased.invalid" and lead["fields"] == {}
        for answer in (admin.get(f"/api/v1/people/{ANN}/export"), admin.delete(f"/api/v1/people/{ANN}")):
            assert answer.status_code == 404 and answer.json()["code"] == "lead_not_found", answer.text
        [entry] = admin.get("/api/v1/audit", params={"action": "person.erased"}).json()["items"]
    assert (entry["actor"], entry["subject"]) == ("api:admin", f"lead:{lead_id}")
    assert ANN not in str(entry) and entry["detail"]["removed"]["identities"] == 2


def test_only_an_admin_may_export_or_erase_and_a_bad_address_is_refused(server: Server) -> None:
    _track_ann(server)
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.delete(f"/api/v1/people/{ANN}").status_code == 401
    with httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.write_key}"}) as writer:
        assert writer.get(f"/api/v1/people/{ANN}/export").status_code in (401, 403)
        assert writer.delete(f"/api/v1/people/{ANN}").status_code in (401, 403)
    with server.admin() as admin:
        refused = admin.delete("/api/v1/people/not-an-address")
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_request", refused.text
        assert admin.get(f"/api/v1/people/{ANN}/export").status_code == 200  # still there


def test_the_worker_deletes_raw_events_older_than_the_retention_setting(engine: Engine, playbook: Playbook) -> None:
    now = utc_now()
    messages = [{"type": "identify", "userId": "u-old", "traits": {"email": "old@acme.example"},
                 "timestamp": (now - timedelta(days=50)).isoformat()},
                *({"type": "track", "userId": "u-old", "event": "Webinar Attended",
                   "timestamp": (now - timedelta(days=days)).isoformat()} for days in (45, 40, 3))]
    ingest(UnitOfWork(engine), playbook, [to_event(m, playbook, now) for m in messages], now)

    def events() -> int:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(tables.events)) or 0

    with engine.connect() as connection:
        scores = connection.execute(select(tables.leads.c.fit, tables.leads.c.engagement)).all()
    assert events() == 4
    with running_server(engine, playbook, event_retention_days=30, worker_poll_seconds=0.1):
        deadline = time.monotonic() + 15
        while events() != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert events() == 1
    with engine.connect() as connection:
        assert connection.execute(select(tables.leads.c.fit, tables.leads.c.engagement)).all() == scores


def test_the_command_line_exports_and_erases_a_person_and_asks_before_erasing(leadrelay: Run, tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(f"email,name\n{ANN},Ann Quill Person\nbob@acme.example,Bob\n",
                                        encoding="utf-8")
    assert leadrelay("import", "leads", "leads.csv").returncode == 0

    exported = leadrelay("export", ANN, "--out", "ann.json")
    assert exported.returncode == 0, exported.stderr
    held = json.loads((tmp_path / "ann.json").read_text(encoding="utf-8"))
    assert held["emails"] == [ANN] and held["tables"]["leads"][0]["fields"]["name"] == "Ann Quill Person"

    assert_clean_refusal(leadrelay("erase", ANN), "confirm with --yes")
    erased = leadrelay("erase", ANN, "--yes")
    assert erased.returncode == 0 and "Erased" in erased.stdout, erased.stderr
    assert_clean_refusal(leadrelay("export", ANN), "no lead with email")
    files = [path for path in tmp_path.iterdir() if path.name.startswith("leadrelay.db")]  # with -wal, -shm
    for path in files:  # not even in free pages or the write-ahead log
        held = path.read_bytes()
        assert b"Ann Quill Person" not in held and ANN.encode() not in held, path.name

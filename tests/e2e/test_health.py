"""Health endpoints over real HTTP (each test on SQLite and on PostgreSQL): `/healthz` and `/readyz`
are public, `/readyz` says not ready when the schema is not the one this version expects, and
`/metrics` (admin key) gives the store's figures in Prometheus format."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text, update

from leadrelay.adapters.tables import clocks
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook

from .server import Server, running_server


def _demo_request(email: str) -> list[dict[str, object]]:
    return [
        {"type": "identify", "userId": email, "messageId": uuid.uuid4().hex,
         "traits": {"email": email, "industry": "software", "title": "VP Marketing", "country": "DE"}},
        {"type": "track", "userId": email, "messageId": uuid.uuid4().hex, "event": "Demo Requested"},
    ]


def _metrics(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with server.admin() as admin:
        answer = admin.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_healthz_and_readyz_answer_without_a_key_and_say_the_database_is_at_the_newest_schema(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anyone:
        alive = anyone.get("/healthz")
        ready = anyone.get("/readyz")
    assert alive.status_code == 200 and alive.json()["status"] == "ok"
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["database_revision"] == body["expected_revision"] and body["database_revision"]


def test_readyz_is_503_saying_why_when_the_database_is_not_migrated_to_this_versions_schema(server: Server) -> None:
    engine = server.app.engine
    with engine.begin() as connection:
        head = connection.scalar(text("SELECT version_num FROM alembic_version"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as anyone:
            ready = anyone.get("/readyz")
            alive = anyone.get("/healthz")
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert alive.status_code == 200  # alive, but must not get traffic
    assert ready.status_code == 503
    body = ready.json()
    assert body["code"] == "not_ready" and "0005" in body["message"] and "leadrelay migrate" in body["message"]


def test_metrics_need_an_admin_key(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anyone:
        assert anyone.get("/metrics").status_code == 401
        with_write_key = anyone.get("/metrics", headers={"Authorization": f"Bearer {server.write_key}"})
    assert with_write_key.status_code in (401, 403)
    assert "leadrelay_store" not in with_write_key.text


def test_metrics_count_stored_events_and_hand_offs_and_show_the_outbox_backlog_and_clock_lag(
    engine: Engine, playbook: Playbook
) -> None:
    # no worker in this server: nothing is delivered and no clock is swept, so the backlog stays visible
    with running_server(engine, playbook, worker_in_server=False) as server:
        before = _metrics(server)
        assert before[("leadrelay_store_hand_offs_total", ())] == 0
        assert before[("leadrelay_store_clock_lag_seconds", ())] == 0
        with server.tracker() as tracker:
            for number in range(3):
                answer = tracker.post("/v1/batch", json={"batch": _demo_request(f"buyer{number}@acme{number}.io")})
                assert answer.status_code == 200, answer.text
        with server.admin() as admin:
            hook = admin.post("/api/v1/webhooks", json={"name": "crm", "url": "http://127.0.0.1:9/hook",
                                                        "events": ["deal.opened"]})
            assert hook.status_code == 201, hook.text
        with server.tracker() as tracker:
            assert tracker.post("/v1/batch", json={"batch": _demo_request("late@acme9.io")}).status_code == 200
        # one running clock made overdue by ten minutes: the lag a stopped worker leaves
        with engine.begin() as connection:
            first = connection.scalar(text("SELECT min(id) FROM clocks WHERE status = 'running'"))
            connection.execute(update(clocks).where(clocks.c.id == first).values(
                due_at=utc_now() - timedelta(minutes=10), warn_at=utc_now() - timedelta(minutes=20)))

        after = _metrics(server)

    assert after[("leadrelay_store_events_stored_total", ())] >= 8
    assert after[("leadrelay_process_events_ingested_total", ())] == 8  # counted by this process's writer
    assert after[("leadrelay_store_hand_offs_total", ())] == 4
    assert after[("leadrelay_process_hand_offs_total", ())] == 4
    assert after[("leadrelay_store_open_deals", ())] == 4
    assert after[("leadrelay_store_outbox_items", (("kind", "webhook"), ("status", "pending")))] == 1
    assert after[("leadrelay_store_outbox_due", ())] >= 1
    assert after[("leadrelay_store_clocks_overdue", ())] == 1
    assert 590 <= after[("leadrelay_store_clock_lag_seconds", ())] <= 900
    assert after[("leadrelay_store_warnings_overdue", ())] >= 1
    assert after[("leadrelay_build_info", (("database", engine.dialect.name), ("playbook_version", playbook.version),
                                          ("version", after_version(after))))] == 1


def after_version(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> str:
    return next(dict(labels)["version"] for name, labels in samples if name == "leadrelay_build_info")

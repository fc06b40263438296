"""The SLA over HTTP (SQLite and PostgreSQL): a deal shows its clocks, a touch meets the first
touch, and the SLA report answers with both teams' numbers."""

from __future__ import annotations

from .server import Server
from .test_hand_off_api import AMERICAS_COUNTRY, assert_error, deals_of, demo_request, send


def test_a_deal_shows_its_clocks_and_a_call_meets_the_first_touch(server: Server) -> None:
    email = "clocked@deal.example"
    send(server, *demo_request(email, country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        [deal] = deals_of(admin, email)
        before = admin.get(f"/api/v1/deals/{deal['id']}").json()["clocks"]
        admin.post(f"/api/v1/deals/{deal['id']}/touches", json={"kind": "call", "outcome": "connected"})
        after = {c["commitment"]: c for c in admin.get(f"/api/v1/deals/{deal['id']}").json()["clocks"]}
        on_lead = admin.get(f"/api/v1/leads/{deal['lead_id']}").json()["clocks"]

    assert {c["commitment"] for c in before} == {"answer the hand-off", "first touch", "keep trying"}
    assert all(c["status"] == "running" and c["owner"] == deal["owner"] for c in before)
    assert all(c["due_at"] > c["started_at"] and c["paused_seconds"] >= 0 for c in before)
    assert after["first touch"]["status"] == "met" and after["answer the hand-off"]["status"] == "running"
    assert {c["commitment"]: c["status"] for c in on_lead} == {k: v["status"] for k, v in after.items()}


def test_the_sla_report_answers_with_compliance_and_marketings_numbers(server: Server) -> None:
    send(server, *demo_request("one@report.example", country=AMERICAS_COUNTRY))
    with server.admin() as admin:
        report = admin.get("/api/v1/reports/sla", params={"by": "team"})
        wrong_period = admin.get("/api/v1/reports/sla", params={"from": "2026-02-01", "to": "2026-01-01"})
        wrong_group = admin.get("/api/v1/reports/sla", params={"by": "planet"})

    assert report.status_code == 200, report.text
    body = report.json()
    assert {row["commitment"] for row in body["compliance"]} == {"answer the hand-off", "first touch", "keep trying"}
    assert all(row["group"] == "americas" and row["running"] == 1 for row in body["compliance"])
    assert [m["commitment"] for m in body["marketing"]] == ["MQL volume", "acceptance"]
    assert set(body["response"]) == {"accept", "first_touch"}
    assert_error(wrong_period, 400, "invalid_period")
    assert wrong_group.status_code == 422

"""The REST API over real HTTP (each test on SQLite and on PostgreSQL): leads, their timeline,
moves, accounts, the playbook; pages, filters, and errors as JSON with a stable code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from leadrelay.adapters.playbook_file import default_playbook_text
from leadrelay.domain.clock import utc_now
from leadrelay.services import leads as lead_service

from .server import Server


def upsert(admin: httpx.Client, email: str, **fields: Any) -> httpx.Response:
    return admin.post("/api/v1/leads", json={"email": email, "fields": fields})


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return str(body["message"])


# --- leads -----------------------------------------------------------------------------------------


def test_posting_a_lead_creates_it_scored_and_posting_again_updates_it(server: Server) -> None:
    with server.admin() as admin:
        created = upsert(admin, " Ann@Acme.io ", industry="software", job_title="VP Marketing")
        updated = upsert(admin, "ann@acme.io", employees="120", industry="")

    assert created.status_code == 201 and updated.status_code == 200
    first, second = created.json(), updated.json()
    assert first["email"] == "ann@acme.io" and first["id"] == second["id"]
    assert first["scores"]["fit_breakdown"] == {"target industry": 25, "decision maker": 25}
    assert second["fields"] == {"industry": "software", "title": "VP Marketing", "company_size": 120}  # "" erases nothing
    assert second["scores"]["fit"] == 60 and second["stage"] == "lead"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"email": "ann@acme.io", "fields": {"industy": "software"}}, "industy"),
        ({"email": "ann@acme.io", "fields": {"company_size": "lots"}}, "company_size"),
        ({"email": "not an email", "fields": {}}, "email"),
    ],
)
def test_a_lead_with_an_unknown_field_a_wrong_value_or_a_bad_email_is_refused_saying_which(
    server: Server, body: dict[str, Any], says: str
) -> None:
    with server.admin() as admin:
        answer = admin.post("/api/v1/leads", json=body)
        assert says in assert_error(answer, 422, "invalid_field")
        assert admin.get("/api/v1/leads").json()["items"] == []


def test_a_request_that_does_not_fit_the_schema_is_answered_422_saying_where(server: Server) -> None:
    with server.admin() as admin:
        message = assert_error(admin.post("/api/v1/leads", json={"fields": {}}), 422, "invalid_request")
        assert "body.email" in message
        assert_error(admin.get("/api/v1/leads", params={"limit": 0}), 422, "invalid_request")
        assert_error(admin.get("/api/v1/leads", params={"created_after": "soon"}), 422, "invalid_request")
        assert_error(admin.get("/api/v1/leads/0"), 422, "invalid_request")


def test_an_unknown_lead_is_a_404_with_a_code(server: Server) -> None:
    with server.admin() as admin:
        assert_error(admin.get("/api/v1/leads/999999"), 404, "lead_not_found")
        assert_error(admin.get("/api/v1/leads/999999/events"), 404, "lead_not_found")
        assert_error(admin.get("/api/v1/nothing-here"), 404, "not_found")


def test_leads_come_a_page_at_a_time_newest_first_and_every_lead_exactly_once(server: Server) -> None:
    with server.admin() as admin:
        for number in range(7):
            upsert(admin, f"person{number}@acme.io")
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            page = admin.get("/api/v1/leads", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
            seen += [item["email"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert_error(admin.get("/api/v1/leads", params={"cursor": "garbage!"}), 400, "invalid_cursor")

    assert seen == [f"person{number}@acme.io" for number in reversed(range(7))]


def test_leads_are_found_by_stage_source_score_and_time(server: Server) -> None:
    with server.admin() as admin:
        upsert(admin, "ann@acme.io", industry="software", title="VP Marketing", source="webinar")
        upsert(admin, "bob@acme.io", title="Engineer", source="ads")
        upsert(admin, "cid@competitor.example")  # the default playbook disqualifies a competitor

        def emails(**params: Any) -> list[str]:
            answer = admin.get("/api/v1/leads", params=params)
            assert answer.status_code == 200, answer.text
            return sorted(item["email"] for item in answer.json()["items"])

        assert emails(stage="disqualified") == ["cid@competitor.example"]
        assert emails(source="webinar") == ["ann@acme.io"]
        assert emails(score_min=40) == ["ann@acme.io"]
        assert emails(score_max=10) == ["bob@acme.io", "cid@competitor.example"]
        assert emails(created_after=(utc_now() - timedelta(minutes=5)).isoformat()) == [
            "ann@acme.io", "bob@acme.io", "cid@competitor.example"]
        assert emails(created_before=(utc_now() - timedelta(minutes=5)).isoformat()) == []
        assert emails(email="BOB@acme.io") == ["bob@acme.io"]
        assert "qualified" in assert_error(admin.get("/api/v1/leads", params={"stage": "qualified"}), 400, "unknown_stage")


def test_a_lead_merged_into_another_answers_with_the_lead_it_was_merged_into(server: Server) -> None:
    with server.admin() as admin:
        old = upsert(admin, "ann@old.example").json()
        kept = upsert(admin, "ann@acme.io").json()
        lead_service.merge_leads(server.app.uow(), server.app.playbook, "ann@old.example", "ann@acme.io", utc_now())

        assert admin.get(f"/api/v1/leads/{old['id']}").json()["id"] == kept["id"]


def test_a_leads_timeline_is_newest_first_a_page_at_a_time(server: Server) -> None:
    now = (utc_now() - timedelta(days=1)).replace(hour=12)  # every event on one day (for the per-day cap)
    batch = [{"type": "identify", "userId": "u-ann", "messageId": "m0", "traits": {"email": "ann@acme.io"},
              "timestamp": (now - timedelta(hours=10)).isoformat()}]
    batch += [{"type": "track", "userId": "u-ann", "messageId": f"m{hour}", "event": "email_open",
               "timestamp": (now - timedelta(hours=hour)).isoformat()} for hour in range(1, 6)]
    with server.tracker() as tracker:
        tracker.post("/v1/batch", json={"batch": batch})
    with server.admin() as admin:
        lead_id = admin.get("/api/v1/leads").json()["items"][0]["id"]
        first = admin.get(f"/api/v1/leads/{lead_id}/events", params={"limit": 4}).json()
        rest = admin.get(f"/api/v1/leads/{lead_id}/events", params={"limit": 4, "cursor": first["next_cursor"]}).json()

    ids = [item["message_id"] for item in first["items"] + rest["items"]]
    assert ids == ["m1", "m2", "m3", "m4", "m5", "m0"]
    assert rest["next_cursor"] is None
    # each event keeps the points it earned: email opens count 3 a day, the earliest first
    assert [item["points"] for item in first["items"] + rest["items"]] == [0, 0, 1, 1, 1, 0]


# --- moves -----------------------------------------------------------------------------------------


def test_a_lead_moves_as_the_playbook_allows_and_the_move_is_in_its_history(server: Server) -> None:
    with server.admin() as admin:
        lead_id = upsert(admin, "ann@acme.io").json()["id"]
        moved = admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "sal"})
        not_allowed = admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "customer"})
        no_reason = admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "recycled"})
        unknown = admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "heaven"})
        handed_back = admin.post(f"/api/v1/leads/{lead_id}/move", json={"to": "recycled", "reason": "no budget"})
        history = admin.get(f"/api/v1/leads/{lead_id}").json()["history"]

    assert moved.status_code == 200 and (moved.json()["from_stage"], moved.json()["to_stage"]) == ("lead", "sal")
    assert "allowed moves" in assert_error(not_allowed, 409, "move_not_allowed")
    assert "no budget" in assert_error(no_reason, 422, "reason_required")
    assert_error(unknown, 422, "unknown_stage")
    assert handed_back.status_code == 200
    assert [(h["to_stage"], h["by"], h["reason"]) for h in history] == [
        ("lead", "created", None), ("sal", "api:admin", None), ("recycled", "api:admin", "no budget")]


# --- accounts, playbook, docs ----------------------------------------------------------------------


def test_accounts_are_listed_with_their_number_of_leads(server: Server) -> None:
    with server.admin() as admin:
        for email in ("ann@acme.io", "bob@acme.io", "cid@globex.example", "dan@gmail.com"):
            upsert(admin, email)
        page = admin.get("/api/v1/accounts").json()
        acme = admin.get("/api/v1/accounts", params={"domain": "ACME.io"}).json()["items"]
        assert_error(admin.get("/api/v1/accounts/424242"), 404, "account_not_found")

    assert sorted((item["domain"], item["leads"]) for item in page["items"]) == [("acme.io", 2), ("globex.example", 1)]
    assert [(item["domain"], item["leads"]) for item in acme] == [("acme.io", 2)]


def test_the_playbook_in_force_can_be_read_and_a_candidate_checked_with_located_problems(server: Server) -> None:
    broken = default_playbook_text().replace("moves: [sql, recycled, disqualified]", "moves: [sqll, recycled, disqualified]")
    with server.admin() as admin:
        current = admin.get("/api/v1/playbook").json()
        good = admin.post("/api/v1/playbook/validate", json={"yaml": default_playbook_text()}).json()
        bad = admin.post("/api/v1/playbook/validate", json={"yaml": broken}).json()
        not_yaml = admin.post("/api/v1/playbook/validate", json={"yaml": "stages: [\n"}).json()

    assert current["name"] == "Default agreement" and current["mql_rule"] == "fit >= 40 && engagement >= 40"
    assert [stage["id"] for stage in current["stages"]][:3] == ["lead", "mql", "sal"]
    assert good == {"valid": True, "problems": [], "summary": good["summary"]}
    assert bad["valid"] is False
    [problem] = bad["problems"]
    assert "sqll" in problem["message"] and "did you mean 'sql'" in problem["message"]
    assert broken.splitlines()[problem["line"] - 1].strip().startswith("moves: [sqll")
    assert not_yaml["valid"] is False and not_yaml["problems"][0]["line"] >= 1


def test_the_api_documents_itself_without_any_cdn(server: Server) -> None:
    # the documentation opens with a key (or a login session), like every route that is not public
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}) as client:
        document = client.get("/openapi.json").json()
        page = client.get("/docs").text
        script = client.get("/static-offline-docs/swagger-ui-bundle.js")

    assert {"/v1/batch", "/v1/track", "/api/v1/leads", "/api/v1/leads/{lead_id}/move", "/api/v1/playbook/validate"} <= set(
        document["paths"])
    assert "https://" not in page and "http://" not in page
    assert script.status_code == 200 and len(script.content) > 100_000

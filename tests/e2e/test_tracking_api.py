"""The Segment-compatible tracking API over real HTTP (each test on SQLite and on PostgreSQL):
what it takes, what it refuses and how it says so, and that a lead is scored and moved before
the answer is sent."""

from __future__ import annotations

import gzip
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services.api_keys import revoke_key

from .server import Server, running_server

AT = (utc_now() - timedelta(hours=1)).isoformat()


def identify(message_id: str, user_id: str = "u-ann", **traits: Any) -> dict[str, Any]:
    traits.setdefault("email", "ann@acme.io")
    return {"type": "identify", "messageId": message_id, "userId": user_id, "timestamp": AT, "traits": traits}


def track(message_id: str, event: str, user_id: str = "u-ann", **properties: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": user_id, "event": event, "timestamp": AT,
            "properties": properties}


def lead(server: Server, email: str = "ann@acme.io") -> dict[str, Any]:
    with server.admin() as admin:
        found = admin.get("/api/v1/leads", params={"email": email}).json()["items"]
        assert found, f"no lead {email}"
        return admin.get(f"/api/v1/leads/{found[0]['id']}").json()


def events(server: Server, lead_id: int) -> list[dict[str, Any]]:
    with server.admin() as admin:
        return admin.get(f"/api/v1/leads/{lead_id}/events", params={"limit": 500}).json()["items"]


def rejections(server: Server) -> list[dict[str, Any]]:
    with server.admin() as admin:
        return admin.get("/api/v1/tracking/rejections").json()["items"]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"], body
    return body


# --- a lead qualifies on the request that qualifies it ------------------------------------------


def test_a_lead_that_crosses_the_mql_rule_on_a_request_is_an_mql_when_the_answer_arrives(server: Server) -> None:
    batch = [identify("m1", industry="software", title="VP Marketing"),
             track("m2", "download"), track("m3", "webinar_attended"), track("m4", "form_submit")]

    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": batch})

    assert answer.status_code == 200 and answer.json() == {"success": True, "accepted": 4, "rejected": []}
    found = lead(server)
    assert (found["stage"], found["highest_stage"]) == ("mql", "mql")
    assert found["scores"]["fit"] == 50 and found["scores"]["engagement"] >= 40
    assert [(h["from_stage"], h["to_stage"], h["by"]) for h in found["history"]] == [
        (None, "lead", "created"), ("lead", "mql", "rule:mql")]


def test_each_single_call_endpoint_takes_its_own_type_of_message(server: Server) -> None:
    calls = {
        "identify": {"userId": "u-ann", "traits": {"email": "ann@acme.io"}},
        "track": {"userId": "u-ann", "event": "Email Clicked"},
        "page": {"userId": "u-ann", "properties": {"path": "/pricing"}},
        "screen": {"userId": "u-ann", "name": "Home"},
        "group": {"userId": "u-ann", "groupId": "g-acme", "traits": {"name": "Acme"}},
        "alias": {"previousId": "visitor-1", "userId": "u-ann"},
    }
    with server.tracker() as tracker:
        for kind, body in calls.items():
            assert tracker.post(f"/v1/{kind}", json=body).status_code == 200, kind

    found = lead(server)
    names = sorted(event["name"] for event in events(server, found["id"]))
    assert names == ["alias", "email_clicked", "group", "identify", "page_view", "screen_view"]
    assert found["scores"]["engagement"] == pytest.approx(5 + 10 + 1, rel=0.01)  # click, pricing page, page


# --- keys ------------------------------------------------------------------------------------------


def test_the_write_key_is_taken_as_basic_user_or_as_writekey_in_the_body(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        by_body = anonymous.post("/v1/batch", json={"writeKey": server.write_key, "batch": [identify("m1")]})
    with server.tracker() as tracker:
        by_header = tracker.post("/v1/batch", json={"batch": [track("m2", "email_open")]})

    assert by_body.status_code == by_header.status_code == 200
    assert len(events(server, lead(server)["id"])) == 2


@pytest.mark.parametrize("auth", [None, ("lr_not-a-key", ""), ("", "")])
def test_a_missing_or_wrong_write_key_is_refused_and_nothing_is_stored(server: Server, auth: Any) -> None:
    with httpx.Client(base_url=server.url, auth=auth) as client:
        answer = client.post("/v1/batch", json={"batch": [identify("m1")]})

    assert_error(answer, 401, "unauthorized")
    assert "Basic" in answer.headers["www-authenticate"]
    with server.admin() as admin:
        assert admin.get("/api/v1/leads").json()["items"] == []


def test_a_revoked_key_stops_working_at_once(server: Server) -> None:
    with server.tracker() as tracker:
        assert tracker.post("/v1/batch", json={"batch": [identify("m1")]}).status_code == 200
        revoke_key(server.app.uow(), server.write_key[:10], utc_now())
        assert_error(tracker.post("/v1/batch", json={"batch": [identify("m2")]}), 401, "unauthorized")


def test_a_write_key_cannot_read_the_rest_api_and_the_rest_api_needs_a_key(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.write_key}"}) as client:
        assert_error(client.get("/api/v1/leads"), 403, "forbidden")
    with httpx.Client(base_url=server.url) as client:
        assert_error(client.get("/api/v1/leads"), 401, "unauthorized")


# --- what is refused, and how -----------------------------------------------------------------------


def test_a_gzipped_batch_is_taken(server: Server) -> None:
    body = gzip.compress(orjson.dumps({"batch": [identify("m1"), track("m2", "email_click")]}))
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", content=body,
                              headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert lead(server)["scores"]["engagement"] == pytest.approx(5, abs=0.01)


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b'{"batch": [', {}, "invalid_json"),
        (b"not json at all", {}, "invalid_json"),
        (b"\x1f\x8b not really gzip", {"Content-Encoding": "gzip"}, "invalid_gzip"),
        (b'{"batch": []}', {"Content-Encoding": "br"}, "unsupported_encoding"),
        (b'{"messages": []}', {}, "invalid_batch"),
        (b"[1, 2]", {}, "invalid_batch"),
    ],
)
def test_a_body_that_cannot_be_read_is_answered_400_saying_why(
    server: Server, body: bytes, headers: dict[str, str], code: str
) -> None:
    with server.tracker() as tracker:
        assert_error(tracker.post("/v1/batch", content=body, headers=headers), 400, code)


def test_a_batch_over_500_kb_is_refused_whole_even_when_gzip_makes_it_small(server: Server) -> None:
    filler = "x" * 1000
    big = {"batch": [track(f"m{i}", "email_open", note=filler) for i in range(600)]}  # about 700 KB
    with server.tracker() as tracker:
        plain = tracker.post("/v1/batch", json=big)
        zipped = tracker.post("/v1/batch", content=gzip.compress(orjson.dumps(big)), headers={"Content-Encoding": "gzip"})

    assert "500 KB" in assert_error(plain, 400, "too_large")["message"]
    assert len(gzip.compress(orjson.dumps(big))) < 50_000
    assert "unzipped" in assert_error(zipped, 400, "too_large")["message"]
    with server.admin() as admin:
        assert admin.get("/api/v1/leads").json()["items"] == []


def test_an_invalid_message_is_refused_alone_with_its_reason_kept_and_the_rest_stored(server: Server) -> None:
    batch = [
        identify("m1"),
        track("m2", "email_click"),
        {"type": "track", "messageId": "m3", "userId": "u-ann"},  # no event name
        {"type": "unknown", "messageId": "m4", "userId": "u-ann"},
        {"type": "track", "messageId": "m5", "event": "x"},  # no id of the person
        track("m6", "email_open", note="y" * 40_000),  # over 32 KB
        {"type": "track", "messageId": "m7", "userId": "u-ann", "event": "x", "timestamp": "yesterday"},
    ]
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": batch})

    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 2
    reasons = {item["index"]: item["reason"] for item in body["rejected"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "event name" in reasons[2] and "type" in reasons[3] and "userId or an anonymousId" in reasons[4]
    assert "32 KB" in reasons[5] and "timestamp" in reasons[6]
    kept = rejections(server)
    assert sorted(item["message_id"] for item in kept) == ["m3", "m4", "m5", "m6", "m7"]
    assert all(item["reason"] and item["message"] for item in kept)
    assert len(events(server, lead(server)["id"])) == 2


def test_an_invalid_single_call_is_answered_400_and_kept(server: Server) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/track", json={"userId": "u-ann", "messageId": "m1"})

    assert "event name" in assert_error(answer, 400, "invalid_message")["message"]
    assert [item["message_id"] for item in rejections(server)] == ["m1"]


def test_a_resent_batch_changes_nothing(server: Server) -> None:
    batch = {"batch": [identify("m1", industry="software"), track("m2", "form_submit")]}
    with server.tracker() as tracker:
        tracker.post("/v1/batch", json=batch)
        before = lead(server)
        again = tracker.post("/v1/batch", json=batch)

    assert again.status_code == 200
    after = lead(server)
    assert after["scores"]["engagement"] == pytest.approx(before["scores"]["engagement"], rel=1e-3)
    assert len(events(server, after["id"])) == 2


# --- what a batch means ------------------------------------------------------------------------------


def test_the_batch_context_is_merged_into_each_message_and_its_campaign_is_the_first_and_last_touch(
    server: Server,
) -> None:
    first = {**track("m1", "email_click"), "timestamp": (utc_now() - timedelta(days=2)).isoformat()}
    later = {"type": "page", "messageId": "m2", "userId": "u-ann", "timestamp": AT,
             "properties": {"path": "/pricing", "url": "https://www.seller.example/pricing",
                            "referrer": "https://news.example/article"},
             "context": {"campaign": None}}
    body = {"batch": [identify("m0"), first, later],
            "context": {"campaign": {"source": "newsletter", "medium": "email", "name": "autumn"}}}
    with server.tracker() as tracker:
        assert tracker.post("/v1/batch", json=body).status_code == 200

    found = lead(server)
    assert (found["first_touch"]["source"], found["first_touch"]["medium"], found["first_touch"]["campaign"]) == (
        "newsletter", "email", "autumn")
    assert (found["last_touch"]["source"], found["last_touch"]["medium"]) == ("news.example", "referral")
    assert found["last_touch"]["url"] == "https://www.seller.example/pricing"
    assert found["source"] == "newsletter"


def test_a_group_call_ties_the_lead_to_its_account(server: Server) -> None:
    body = {"batch": [
        identify("m1", email="ann@gmail.com"),
        {"type": "group", "messageId": "m2", "userId": "u-ann", "groupId": "acct-42", "timestamp": AT,
         "traits": {"name": "Acme Corp", "website": "https://www.acme.io", "employees": 300}},
    ]}
    with server.tracker() as tracker:
        assert tracker.post("/v1/batch", json=body).status_code == 200

    found = lead(server, "ann@gmail.com")
    assert found["account_id"] is not None
    assert found["fields"].get("name") is None  # the group's name is the account's, not the person's
    with server.admin() as admin:
        account = admin.get(f"/api/v1/accounts/{found['account_id']}").json()
    assert (account["name"], account["domain"], account["group_id"], account["leads"]) == (
        "Acme Corp", "acme.io", "acct-42", 1)


def test_an_anonymous_visitors_pages_count_for_the_lead_once_identify_ties_them(server: Server) -> None:
    pages = [{"type": "page", "messageId": f"p{i}", "anonymousId": "visitor-9", "timestamp": AT,
              "properties": {"path": "/pricing"}} for i in range(3)]
    with server.tracker() as tracker:
        tracker.post("/v1/batch", json={"batch": pages})
        with server.admin() as admin:
            assert admin.get("/api/v1/leads").json()["items"] == []
        tracker.post("/v1/identify", json={"anonymousId": "visitor-9", "userId": "u-ann",
                                           "traits": {"email": "ann@acme.io"}})

    found = lead(server)
    assert len(events(server, found["id"])) == 4
    assert found["scores"]["engagement"] == pytest.approx(10 + 3, rel=0.01)  # pricing capped at 10 a day


def test_concurrent_batches_for_the_same_lead_lose_no_points(server: Server) -> None:
    with server.tracker() as tracker:
        tracker.post("/v1/identify", json={"userId": "u-ann", "traits": {"email": "ann@acme.io"}})

    def send(client: int) -> int:
        with server.tracker() as tracker:
            batch = [{"type": "track", "messageId": f"c{client}", "userId": "u-ann", "event": "download", "timestamp": AT},
                     {"type": "page", "messageId": f"p{client}", "anonymousId": f"visitor-{client}", "timestamp": AT}]
            return tracker.post("/v1/batch", json={"batch": batch}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, range(8)))

    assert statuses == [200] * 8
    found = lead(server)
    assert len(events(server, found["id"])) == 9
    assert found["scores"]["engagement_breakdown"] == {"content download": pytest.approx(80, rel=0.01)}


# --- overload ----------------------------------------------------------------------------------------


def _hold_write_lock(engine: Engine, held: threading.Event, release: threading.Event) -> None:
    with engine.connect() as connection:
        connection.begin()  # on SQLite, this takes the write lock
        if engine.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
        held.set()
        release.wait(30)
        connection.rollback()


def test_when_too_many_batches_wait_the_api_answers_429_with_retry_after_and_loses_nothing(
    engine: Engine, playbook: Playbook
) -> None:
    with running_server(engine, playbook, max_pending_batches=1) as server:
        held, release = threading.Event(), threading.Event()
        locker = threading.Thread(target=_hold_write_lock, args=(engine, held, release))
        locker.start()
        assert held.wait(10)
        try:
            def send(number: int) -> httpx.Response:
                with server.tracker() as tracker:
                    return tracker.post("/v1/batch", json={"batch": [identify(f"m{number}")]})

            with ThreadPoolExecutor(6) as pool:
                waiting = [pool.submit(send, number) for number in range(6)]
                answered_while_blocked, _ = wait(waiting, timeout=10, return_when=FIRST_COMPLETED)
                release.set()
                answers = [future.result() for future in waiting]
        finally:
            release.set()
            locker.join()

        statuses = sorted(answer.status_code for answer in answers)
        assert 429 in statuses and 200 in statuses, statuses
        for answer in answers:
            if answer.status_code == 429:
                assert_error(answer, 429, "overloaded")
                assert int(answer.headers["retry-after"]) >= 1
        assert {future.result().status_code for future in answered_while_blocked} == {429}
        assert len(events(server, lead(server)["id"])) == statuses.count(200)  # every accepted batch stored


def test_a_message_refused_for_a_nul_character_is_kept_with_its_reason(server: Server) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": [{"type": "track", "messageId": "m\x001", "userId": "u\x00",
                                                            "event": "x"}]})

    assert answer.status_code == 200 and answer.json()["accepted"] == 0
    [kept] = rejections(server)
    assert kept["message_id"] == "m\ufffd1" and "NUL" in kept["reason"]

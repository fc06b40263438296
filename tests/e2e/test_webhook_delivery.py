"""What a hand-off sends out, to real receivers on this machine (each test on SQLite and on
PostgreSQL): signed webhooks to the subscriptions that want the event, the owner's email through
a real SMTP server, and the outbox's retries, dead items and the retry of a dead item."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from receivers import ReceivedRequest, SmtpServer, WebhookReceiver
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadrelay.adapters.webhooks import WebhookSender
from leadrelay.domain.playbook import Playbook
from leadrelay.services.delivery import Deliverer, Policy

from .server import Server, running_server
from .waiting import eventually

WAIT = 5.0


# --- helpers -----------------------------------------------------------------------------------


def hand_off(server: Server, email: str, **traits: Any) -> dict[str, Any]:
    """A demo request (the playbook's fast track to `sal`): the lead is handed to sales; its open deal."""
    batch = [
        {"type": "identify", "userId": email, "messageId": uuid.uuid4().hex, "traits": {"email": email, **traits}},
        {"type": "track", "userId": email, "messageId": uuid.uuid4().hex, "event": "Demo Requested"},
    ]
    with server.tracker() as tracker:
        answer = tracker.post("/v1/batch", json={"batch": batch})
        assert answer.status_code == 200 and answer.json()["rejected"] == [], answer.text
    with server.admin() as admin:
        lead_id = admin.get("/api/v1/leads", params={"email": email}).json()["items"][0]["id"]
        [deal] = admin.get("/api/v1/deals", params={"lead_id": lead_id, "status": "open"}).json()["items"]
        return dict(admin.get(f"/api/v1/deals/{deal['id']}").json())


def subscribe(admin: httpx.Client, url: str, events: list[str], name: str = "crm") -> dict[str, Any]:
    answer = admin.post("/api/v1/webhooks", json={"name": name, "url": url, "events": events})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())




def outbox(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = admin.get("/api/v1/outbox", params={"limit": 500, **params})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def deliveries(admin: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    answer = admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def body_of(request: ReceivedRequest) -> dict[str, Any]:
    return dict(json.loads(request.body))


def other_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@contextmanager
def server_without_worker(engine: Engine, playbook: Playbook) -> Iterator[Server]:
    """A server whose outbox the test delivers itself (with a short backoff), round by round."""
    with running_server(engine, playbook, worker_in_server=False) as server:
        yield server


def deliverer(server: Server, *, max_attempts: int) -> Deliverer:
    return Deliverer(server.app.uow, webhooks=WebhookSender(timeout=5), email=None,
                     policy=Policy(max_attempts=max_attempts, first_retry=timedelta(milliseconds=50)))


def deliver_until(worker: Deliverer, done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        worker.deliver_due()
        time.sleep(0.02)


# --- signed webhooks ---------------------------------------------------------------------------


def test_a_hand_off_is_posted_signed_to_each_subscription_that_wants_deal_opened_and_to_no_other(
    server: Server,
) -> None:
    with WebhookReceiver() as crm, WebhookReceiver() as everything, WebhookReceiver() as closed_only, \
            WebhookReceiver() as switched_off, server.admin() as admin:
        wanted = subscribe(admin, crm.url, ["deal.opened"], "crm")
        catch_all = subscribe(admin, everything.url, ["*"], "data warehouse")
        subscribe(admin, closed_only.url, ["deal.closed"], "reporting")
        inactive = subscribe(admin, switched_off.url, ["*"], "old crm")
        patched = admin.patch(f"/api/v1/webhooks/{inactive['id']}", json={"active": False})
        assert patched.status_code == 200 and patched.json()["active"] is False

        deal = hand_off(server, "ann@acme.io", name="Ann Lee", country="DE", industry="software")
        [request] = crm.wait_for(1)
        [copy] = everything.wait_for(1)
        logged = eventually(lambda: deliveries(admin, wanted["id"]), "the delivery log")
        webhook_items = [item for item in outbox(admin) if item["kind"] == "webhook"]
        listed = admin.get("/api/v1/webhooks").json()

    assert wanted["secret"].startswith("whsec_") and "secret" not in listed[0]
    headers = request.headers
    assert Webhook(wanted["secret"]).verify(request.body, headers)["type"] == "deal.opened"
    for wrong in (other_secret(), catch_all["secret"]):
        with pytest.raises(WebhookVerificationError):
            Webhook(wrong).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(wanted["secret"]).verify(request.body.replace(b"ann@acme.io", b"eve@evil.io"), headers)
    assert request.method == "POST" and request.path == "/hook"
    assert headers["idempotency-key"] == headers["webhook-id"] and headers["leadrelay-event"] == "deal.opened"
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60

    body = body_of(request)
    assert (body["id"], body["type"]) == (headers["webhook-id"], "deal.opened") and body["created_at"]
    sent = body["data"]["deal"]
    assert (sent["id"], sent["owner"], sent["team"], sent["stage"]) == (deal["id"], deal["owner"], "emea", "sal")
    assert sent["owner"] is not None and sent["routed_by"] == deal["routed_by"]
    assert sent["package"]["fields"] == deal["package"]["fields"]
    assert {"name": "name", "label": "Name", "value": "Ann Lee"} in sent["package"]["fields"]
    assert body["data"]["lead"]["email"] == "ann@acme.io" and body["data"]["lead"]["owner"] == deal["owner"]

    assert Webhook(catch_all["secret"]).verify(copy.body, copy.headers)["type"] == "deal.opened"
    assert copy.headers["webhook-id"] != headers["webhook-id"]  # one message per subscription
    assert closed_only.requests == [] and switched_off.requests == []
    assert sorted(item["webhook_id"] for item in webhook_items) == sorted([wanted["id"], catch_all["id"]])
    [attempt] = logged
    assert (attempt["attempt"], attempt["ok"], attempt["status_code"], attempt["key"], attempt["event"]) == (
        1, True, 200, headers["webhook-id"], "deal.opened")


def test_moves_of_a_deal_and_a_hand_back_are_posted_to_their_subscribers(server: Server) -> None:
    with WebhookReceiver() as moves, WebhookReceiver() as marketing, server.admin() as admin:
        subscribe(admin, moves.url, ["deal.moved", "deal.closed", "deal.assigned"], "board sync")
        automation = subscribe(admin, marketing.url, ["lead.handed_back"], "nurture tool")
        deal = hand_off(server, "bob@acme.io", country="US")
        moved = admin.post(f"/api/v1/deals/{deal['id']}/move", json={"to": "sql"})
        reassigned = admin.post(f"/api/v1/deals/{deal['id']}/reassign",
                                json={"owner": "priya.nair@sales.leadrelay.example"})
        rejected = admin.post(f"/api/v1/deals/{deal['id']}/reject", json={"reason": "no need", "note": "bad fit"})
        assert moved.status_code == reassigned.status_code == rejected.status_code == 200, rejected.text
        received = moves.wait_for(3)
        [handed_back] = marketing.wait_for(1)

    assert [(r.headers["leadrelay-event"], body_of(r)["type"]) for r in received] == [
        ("deal.moved", "deal.moved"), ("deal.assigned", "deal.assigned"), ("deal.closed", "deal.closed")]
    move, assign, close = (body_of(r)["data"] for r in received)
    assert (move["move"]["from"], move["move"]["to"], move["move"]["by"]) == ("sal", "sql", "api:admin")
    assert "package" not in move["deal"]
    assert assign["deal"]["owner"] == "priya.nair@sales.leadrelay.example"
    assert (close["deal"]["outcome"], close["deal"]["close_reason"], close["move"]["to"]) == (
        "handed_back", "no need", "recycled")
    hand_back = Webhook(automation["secret"]).verify(handed_back.body, handed_back.headers)
    assert hand_back["type"] == "lead.handed_back" and hand_back["data"]["automation"] == "handed back"
    assert hand_back["data"]["lead"]["email"] == "bob@acme.io" and hand_back["data"]["deal"]["outcome"] == "handed_back"


# --- email -------------------------------------------------------------------------------------


def test_the_new_owner_is_emailed_through_the_smtp_server_with_the_leads_name_and_why(
    engine: Engine, playbook: Playbook
) -> None:
    with SmtpServer() as smtp, running_server(engine, playbook, smtp_host=smtp.host, smtp_port=smtp.port) as server:
        deal = hand_off(server, "ann@acme.io", name="Ann Lee", country="DE")
        [mail] = smtp.wait_for(1)
        with server.admin() as admin:
            [item] = eventually(lambda: outbox(admin, status="delivered"), "the email marked delivered")

    assert mail.recipients == (deal["owner"],) and "leadrelay@localhost" in mail.mail_from
    assert "Ann Lee" in mail.message["Subject"] and "acme.io" in mail.message["Subject"]
    text = mail.message.get_content()
    assert "Ann Lee was handed to you (sal)" in text and f"Why: {deal['routed_by']}" in text
    assert (item["kind"], item["event"], item["attempts"]) == ("email", "automation.tell the rep", 1)


# --- retries and dead items --------------------------------------------------------------------


def test_a_webhook_answered_500_twice_is_delivered_on_the_third_attempt_and_each_attempt_is_logged(
    engine: Engine, playbook: Playbook
) -> None:
    with WebhookReceiver() as receiver, server_without_worker(engine, playbook) as server, \
            server.admin() as admin:
        receiver.respond_with(500, times=2, body=b"database is down")
        hook = subscribe(admin, receiver.url, ["deal.opened"])
        hand_off(server, "ann@acme.io", country="DE")
        [pending] = [item for item in outbox(admin) if item["kind"] == "webhook"]
        assert (pending["status"], pending["attempts"]) == ("pending", 0)

        worker = deliverer(server, max_attempts=5)
        try:
            deliver_until(worker, lambda: len(receiver.requests) >= 3 and bool(outbox(admin, status="delivered")),
                          "three attempts, the last one delivered")
        finally:
            worker.webhooks.close()
        [delivered] = [item for item in outbox(admin, status="delivered") if item["kind"] == "webhook"]
        log = deliveries(admin, hook["id"])

    received = receiver.requests
    assert len(received) == 3
    assert {r.headers["webhook-id"] for r in received} == {pending["key"]}  # one message, retried
    assert {r.headers["idempotency-key"] for r in received} == {pending["key"]}
    for request in received:
        Webhook(hook["secret"]).verify(request.body, request.headers)
    assert (delivered["id"], delivered["attempts"], delivered["last_error"]) == (pending["id"], 3, None)
    assert delivered["delivered_at"] is not None
    assert [(row["attempt"], row["ok"], row["status_code"]) for row in log] == [
        (3, True, 200), (2, False, 500), (1, False, 500)]  # newest first
    assert "HTTP 500" in log[1]["error"] and "database is down" in log[1]["error"]


def test_after_the_last_attempt_a_webhook_is_dead_listed_and_a_retry_delivers_it(
    engine: Engine, playbook: Playbook
) -> None:
    with WebhookReceiver() as receiver, server_without_worker(engine, playbook) as server, \
            server.admin() as admin:
        receiver.respond_with(503, times=3)
        hook = subscribe(admin, receiver.url, ["deal.opened"])
        hand_off(server, "ann@acme.io", country="DE")
        worker = deliverer(server, max_attempts=3)
        try:
            def dead_webhooks() -> list[dict[str, Any]]:
                return [item for item in outbox(admin, status="dead") if item["kind"] == "webhook"]

            deliver_until(worker, lambda: bool(dead_webhooks()), "the webhook dead")
            [dead] = dead_webhooks()
            worker.deliver_due()  # a dead item is not tried again by itself
            assert len(receiver.requests) == 3

            retried = admin.post(f"/api/v1/outbox/{dead['id']}/retry")
            assert retried.status_code == 200, retried.text
            deliver_until(worker, lambda: any(item["id"] == dead["id"] for item in outbox(admin, status="delivered")),
                          "the retried webhook delivered")
        finally:
            worker.webhooks.close()
        [delivered] = [item for item in outbox(admin, status="delivered") if item["id"] == dead["id"]]
        log = deliveries(admin, hook["id"])
        missing = admin.post("/api/v1/outbox/999999/retry")

    assert (dead["status"], dead["attempts"], dead["delivered_at"]) == ("dead", 3, None)
    assert "503" in dead["last_error"]
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
    assert (delivered["attempts"], delivered["last_error"]) == (1, None)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [dead["key"]] * 4
    assert [(row["ok"], row["status_code"]) for row in log] == [(True, 200)] + [(False, 503)] * 3
    assert missing.status_code == 404 and missing.json()["code"] == "outbox_item_not_found"


def test_a_webhook_switched_off_before_delivery_is_never_sent_and_its_waiting_item_goes_dead(
    engine: Engine, playbook: Playbook
) -> None:
    with WebhookReceiver() as receiver, server_without_worker(engine, playbook) as server, \
            server.admin() as admin:
        hook = subscribe(admin, receiver.url, ["deal.opened"])
        hand_off(server, "ann@acme.io", country="DE")
        assert admin.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}).status_code == 200
        worker = deliverer(server, max_attempts=5)
        try:
            worker.deliver_due()
        finally:
            worker.webhooks.close()
        [item] = [item for item in outbox(admin) if item["kind"] == "webhook"]

    assert receiver.requests == []
    assert item["status"] == "dead" and "deactivated" in item["last_error"]

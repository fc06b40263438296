"""Nurture over HTTP, against a real server whose worker sends through a real SMTP server (aiosmtpd):
the links in an email (open pixel, tracked link, unsubscribe page and RFC 8058 one-click POST), tampered
tokens and open-redirect attempts refused with a plain page, the suppression list, bounces and
complaints, enrollments by hand and sequence analytics in the REST API."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from receivers import ReceivedMail, SmtpServer
from sqlalchemy import Engine

from leadrelay.adapters.email_links import LinkSigner
from leadrelay.domain.clock import utc_now
from leadrelay.domain.playbook import Playbook
from leadrelay.services import nurture

from .server import Server, running_server
from .waiting import eventually


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def server(engine: Engine, playbook: Playbook, mail: SmtpServer) -> Iterator[Server]:
    settings = {"smtp_host": mail.host, "smtp_port": mail.port, "nurture_quiet_hours": "", "worker_poll_seconds": 0.05,
                "public_url": "https://relay.example"}
    with running_server(engine, playbook, **settings) as running:
        yield running




def new_lead(server: Server, email: str, **traits: Any) -> None:
    with server.tracker() as tracker:
        answer = tracker.post("/v1/identify", json={"userId": email, "traits": {"email": email, **traits}})
    assert answer.status_code == 200, answer.text


def welcome(server: Server, mail: SmtpServer, email: str = "ann@acme.example") -> ReceivedMail:
    new_lead(server, email, name="Ann Lee")
    return eventually(lambda: next((m for m in mail.messages if m.recipients == (email,)), None), "the welcome email")


def link(message: ReceivedMail, kind: str) -> str:
    """The path of the email's first `kind` link (open, click, unsubscribe), as the server serves it."""
    html = message.message.get_body(("html",)).get_content()
    found = re.search(rf'https://relay\.example(/email/{kind}/[^"\s]+)', html)
    assert found, html
    return found.group(1).replace("&amp;", "&")


def public(server: Server) -> httpx.Client:
    """A reader's mail program or browser: no key, redirects not followed."""
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


def lead_events(server: Server, email: str) -> list[str]:
    with server.admin() as admin:
        lead_id = admin.get("/api/v1/leads", params={"email": email}).json()["items"][0]["id"]
        return [event["name"] for event in admin.get(f"/api/v1/leads/{lead_id}/events").json()["items"]]


def tamper(token: str) -> str:
    payload, _, signature = token.partition(".")
    return f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


def test_the_open_pixel_and_a_tracked_link_record_the_leads_open_and_click(server: Server, mail: SmtpServer):
    message = welcome(server, mail)

    with public(server) as reader:
        pixel = reader.get(link(message, "open"))
        click = reader.get(link(message, "click"))

    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert click.status_code == 302 and click.headers["location"] == "https://www.leadrelay.example/guides/start"
    assert {"email_open", "email_click"} <= set(eventually(lambda: lead_events(server, "ann@acme.example"),
                                                           "the events"))
    with server.admin() as admin:
        [welcome_stats] = [s for s in admin.get("/api/v1/sequences").json() if s["id"] == "welcome"]
    assert welcome_stats["emails"][0]["counts"] | {"delivered": 1} == {
        "sent": 1, "delivered": 1, "opened": 1, "clicked": 1, "unsubscribed": 0, "bounced": 0, "complained": 0,
        "mqls": 0}
    assert welcome_stats["runs"]["active"] == 1


def test_tampered_tokens_and_tokens_for_another_link_get_a_plain_404(server: Server, mail: SmtpServer):
    message = welcome(server, mail)
    click, pixel, unsubscribe = link(message, "click"), link(message, "open"), link(message, "unsubscribe")
    attempts = [
        click.rsplit("/", 1)[0] + "/" + tamper(click.rsplit("/", 1)[1]),
        pixel.rsplit("/", 1)[0] + "/" + tamper(pixel.rsplit("/", 1)[1]),
        "/email/click/" + pixel.rsplit("/", 1)[1],  # an open token is no click token
        "/email/unsubscribe/" + click.rsplit("/", 1)[1],
        "/email/click/not-a-token", "/email/open/" + "A" * 6000, "/email/click/%00.%00",
    ]
    with public(server) as reader:
        for path in attempts:
            answer = reader.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/plain") and "location" not in answer.headers
        refused = reader.post("/email/unsubscribe/" + tamper(unsubscribe.rsplit("/", 1)[1]),
                              data={"List-Unsubscribe": "One-Click"})
    assert refused.status_code == 404
    with server.admin() as admin:
        assert admin.get("/api/v1/suppressions").json()["items"] == []


def test_a_click_link_whose_address_was_changed_never_redirects_there(server: Server, mail: SmtpServer):
    message = welcome(server, mail)
    token = link(message, "click").rsplit("/", 1)[1]
    payload, _, signature = token.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = "https://evil.example/phish"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    secret_free = LinkSigner(b"a guess at the secret, 32 bytes", "https://relay.example")

    own = nurture.link_signer(server.app.uow, server.app.settings, utc_now())  # the server's own key
    script = own.token("click", {"k": data["k"], "u": "javascript:alert(1)"})

    with public(server) as reader:
        for token_ in (f"{forged}.{signature}", secret_free.token("click", data), script):
            answer = reader.get(f"/email/click/{token_}")
            assert answer.status_code == 404 and "location" not in answer.headers


def test_one_click_unsubscribe_suppresses_the_address_and_no_nurture_email_follows(server: Server, mail: SmtpServer):
    message = welcome(server, mail)
    header = message.message["List-Unsubscribe"].strip("<>")
    assert message.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = urlsplit(header).path

    with public(server) as reader:
        page = reader.get(path)
        done = reader.post(path, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        again = reader.post(path, data={"List-Unsubscribe": "One-Click"})

    assert page.status_code == 200 and 'method="post"' in page.text and "ann@acme.example" not in page.text
    assert done.status_code == 200 and "unsubscribed" in done.text and "ann@acme.example" not in done.text
    assert again.status_code == 200 and again.text == done.text
    with server.admin() as admin:
        [row] = admin.get("/api/v1/suppressions").json()["items"]
        assert (row["email"], row["reason"]) == ("ann@acme.example", "unsubscribed")
        refused = admin.post("/api/v1/sequences/re_nurture/enrollments", json={"email": "ann@acme.example"})
        assert refused.status_code == 400 and refused.json()["code"] == "enrollment_refused"
        assert "unsubscribed" in refused.json()["message"]
        lead_id = admin.get("/api/v1/leads", params={"email": "ann@acme.example"}).json()["items"][0]["id"]
        found = admin.get(f"/api/v1/leads/{lead_id}/nurture").json()
    assert [(e["sequence"], e["status"], e["exit_reason"]) for e in found["enrollments"]] == [
        ("welcome", "exited", "unsubscribed")]
    assert found["emails"][0]["unsubscribed_at"] is not None


def test_bounces_complaints_and_the_suppression_list_through_the_api(server: Server, mail: SmtpServer):
    message = welcome(server, mail)
    with server.admin() as admin:
        soft = admin.post("/api/v1/email/bounces", json={"email": "ann@acme.example", "permanent": False})
        hard = admin.post("/api/v1/email/bounces", json={"email": "ann@acme.example",
                                                         "message_id": message.message["Message-ID"]})
        complaint = admin.post("/api/v1/email/complaints", json={"email": "bo@else.example"})
        manual = admin.post("/api/v1/suppressions", json={"email": "Cy@Else.example", "note": "asked by phone"})
        bad = admin.post("/api/v1/suppressions", json={"email": "not an address"})
        wrong_reason = admin.post("/api/v1/suppressions", json={"email": "dee@else.example", "reason": "bored"})
        listed = {row["email"]: row["reason"] for row in admin.get("/api/v1/suppressions").json()["items"]}
        removed = admin.delete("/api/v1/suppressions/cy@else.example")
        missing = admin.delete("/api/v1/suppressions/cy@else.example")
        [stats] = [s for s in admin.get("/api/v1/sequences").json() if s["id"] == "welcome"]

    assert soft.json() == {"email": "ann@acme.example", "suppressed": False}
    assert hard.json() == {"email": "ann@acme.example", "suppressed": True}
    assert complaint.status_code == 200 and manual.status_code == 201 and manual.json()["added"]
    assert bad.status_code == 422 and wrong_reason.status_code == 422
    assert listed == {"ann@acme.example": "bounced", "bo@else.example": "complained", "cy@else.example": "manual"}
    assert removed.status_code == 204 and missing.status_code == 400
    assert stats["exits"] == {"bounced": 1} and stats["emails"][0]["counts"]["bounced"] == 1


def test_sequences_and_enrollments_in_the_api(server: Server, mail: SmtpServer):
    new_lead(server, "ann@acme.example", name="Ann")
    with server.admin() as admin:
        sequences = admin.get("/api/v1/sequences").json()
        welcome_ = admin.get("/api/v1/sequences/welcome").json()
        unknown = admin.get("/api/v1/sequences/nope")
        again = admin.post("/api/v1/sequences/welcome/enrollments", json={"email": "ann@acme.example"})
        nobody = admin.post("/api/v1/sequences/welcome/enrollments", json={"email": "zed@acme.example"})
        runs = admin.get("/api/v1/sequences/welcome/enrollments", params={"status": "active"}).json()["items"]
        removed = admin.post(f"/api/v1/enrollments/{runs[0]['id']}/exit").json()
        manual = admin.post("/api/v1/sequences/welcome/enrollments", json={"email": "ann@acme.example"})

    assert [s["id"] for s in sequences] == ["welcome", "re_nurture"]
    assert welcome_["trigger"] == "new_lead" and welcome_["steps"][0] == "1. email welcome"
    assert [step["step"] for step in welcome_["emails"]] == [1, 4, 6]
    assert unknown.status_code == 404 and unknown.json()["code"] == "sequence_not_found"
    assert again.status_code == 400 and "already in a nurture sequence" in again.json()["message"]
    assert nobody.status_code == 404 and nobody.json()["code"] == "lead_not_found"
    assert (removed["status"], removed["exit_reason"]) == ("exited", "removed")
    assert manual.status_code == 400 and "does not re-enroll" in manual.json()["message"]

"""Outbound webhooks cannot be pointed at the server's own admin API, over real HTTP (SQLite and
PostgreSQL): refused when made or changed, refused again at delivery (a subscription whose address
now leads to the server is not sent, nor connected to), and a receiver's redirect towards the
server is not followed. Receivers on this machine's other ports still get their deliveries."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from receivers import WebhookReceiver
from sqlalchemy import Engine, update

from leadrelay.adapters.tables import webhooks
from leadrelay.adapters.webhooks import WebhookSender
from leadrelay.domain.playbook import Playbook
from leadrelay.services.delivery import Deliverer, Policy
from leadrelay.services.webhooks import UrlPolicy, delivery_guard

from .server import Server, running_server
from .test_webhook_delivery import deliver_until, deliveries, hand_off, subscribe


def test_a_webhook_to_this_server_or_a_metadata_address_is_refused_when_made_or_changed(server: Server) -> None:
    own = f"http://127.0.0.1:{server.app.settings.port}/api/v1/webhooks"  # where the server says it listens
    with WebhookReceiver() as crm, server.admin() as admin:
        for url in (own, "http://169.254.169.254/latest/meta-data/iam/", "http://[fe80::1]:8080/hook"):
            refused = admin.post("/api/v1/webhooks", json={"name": "x", "url": url, "events": ["*"]})
            assert refused.status_code == 400 and refused.json()["code"] == "url_not_allowed", refused.text
        made = subscribe(admin, crm.url, ["*"])  # a receiver elsewhere on this machine is fine
        changed = admin.patch(f"/api/v1/webhooks/{made['id']}", json={"url": own})
        assert changed.status_code == 400 and "this LeadRelay server itself" in changed.json()["message"]
        assert admin.get(f"/api/v1/webhooks/{made['id']}").json()["url"] == crm.url


def _deliverer(server: Server) -> Deliverer:
    address = urlsplit(server.url)
    guard = delivery_guard(UrlPolicy(own=((address.hostname or "", address.port or 80),)))
    return Deliverer(server.app.uow, webhooks=WebhookSender(timeout=5, guard=guard), email=None,
                     policy=Policy(max_attempts=1, first_retry=timedelta(milliseconds=50)))


def test_a_delivery_that_now_leads_to_this_server_is_not_sent(engine: Engine, playbook: Playbook) -> None:
    with running_server(engine, playbook, worker_in_server=False) as server, WebhookReceiver() as crm, \
            server.admin() as admin:
        hook = subscribe(admin, crm.url, ["deal.opened"])
        with engine.begin() as connection:  # e.g. a name that resolved elsewhere when it was made
            connection.execute(update(webhooks).where(webhooks.c.id == hook["id"])
                               .values(url=f"{server.url}/api/v1/webhooks"))
        hand_off(server, "ann@acme.io", country="DE")
        deliver_until(_deliverer(server), lambda: bool(deliveries(admin, hook["id"])), "the refused delivery")
        [attempt] = deliveries(admin, hook["id"])
    assert attempt["status_code"] is None and "this LeadRelay server itself" in attempt["error"]
    assert crm.requests == []


def test_a_receivers_redirect_to_this_server_is_not_followed(engine: Engine, playbook: Playbook) -> None:
    with running_server(engine, playbook, worker_in_server=False) as server, WebhookReceiver() as crm, \
            WebhookReceiver() as fine, server.admin() as admin:
        crm.respond_with(307, headers={"Location": f"{server.url}/api/v1/webhooks"})
        redirecting = subscribe(admin, crm.url, ["deal.opened"], "crm")
        good = subscribe(admin, fine.url, ["deal.opened"], "warehouse")
        hand_off(server, "bernd@firma.de", country="DE")
        worker = _deliverer(server)
        deliver_until(worker, lambda: bool(deliveries(admin, redirecting["id"]) and deliveries(admin, good["id"])),
                      "both deliveries")
        [attempt] = deliveries(admin, redirecting["id"])
        assert [hook["url"] for hook in admin.get("/api/v1/webhooks").json()] == [crm.url, fine.url]
    assert attempt["status_code"] == 307 and "not followed" in attempt["error"]
    assert len(crm.requests) == 1 and len(fine.requests) == 1

"""Signed webhooks sent over real HTTP to a local receiver, checked with the independent `standardwebhooks` package."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from receivers import WebhookReceiver
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadrelay.adapters.webhooks import WebhookSender, new_secret, sign

BODY = json.dumps({"type": "lead.handed_off", "data": {"email": "ada@example.com", "score": 42}}).encode()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    with WebhookSender(timeout=3.0) as sender:
        yield sender


def deliver(sender: WebhookSender, url: str, secret: str, body: bytes = BODY, message_id: str = "msg_1"):
    return sender.send(
        url, secret, message_id=message_id, event_type="lead.handed_off", body=body, timestamp=int(time.time())
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_new_secrets_are_32_random_bytes_in_base64():
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_the_signature_is_the_standard_webhooks_one():
    """The published example of the Standard Webhooks specification, and the reference library on fresh input."""
    assert sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    ) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    secret, timestamp = new_secret(), 1_764_000_000
    expected = Webhook(secret).sign("msg_2", datetime.fromtimestamp(timestamp, UTC), BODY.decode())
    assert sign(secret, "msg_2", timestamp, BODY) == expected


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", ""])
def test_an_unusable_secret_is_refused_and_nothing_is_sent(receiver, sender, secret):
    with pytest.raises(ValueError, match="secret"):
        sign(secret, "msg_1", 1, BODY)

    delivered = deliver(sender, receiver.url, secret)

    assert not delivered.ok and delivered.status_code is None
    assert delivered.error is not None and delivered.error.startswith("cannot send:") and "secret" in delivered.error
    assert receiver.requests == []


@pytest.mark.parametrize("message_id", ["", "msg_1\r\nX-Injected: 1"])
def test_an_unusable_message_id_is_refused_and_nothing_is_sent(receiver, sender, message_id):
    delivered = deliver(sender, receiver.url, new_secret(), message_id=message_id)

    assert not delivered.ok and delivered.error is not None and "message_id" in delivered.error
    assert receiver.requests == []


def test_the_receiver_gets_the_body_and_headers_and_the_signature_verifies(receiver, sender):
    secret = new_secret()

    delivered = deliver(sender, receiver.url, secret, message_id="msg_7Hq")

    assert delivered.ok and delivered.status_code == 200 and delivered.error is None
    assert 0 < delivered.duration_ms < 3000
    [request] = receiver.wait_for(1)
    assert (request.method, request.path, request.body) == ("POST", "/hook", BODY)
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "LeadRelay"
    assert headers["leadrelay-event"] == "lead.handed_off"
    assert headers["webhook-id"] == "msg_7Hq"
    assert headers["idempotency-key"] == headers["webhook-id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert Webhook(secret).verify(request.body, headers) == json.loads(BODY)


def test_the_signature_fails_with_another_secret_or_a_changed_body(receiver, sender):
    deliver(sender, receiver.url, new_secret())
    [request] = receiver.wait_for(1)

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(request.body, request.headers)
    secret = new_secret()
    deliver(sender, receiver.url, secret)
    request = receiver.wait_for(2)[1]
    tampered = request.body.replace(b"42", b"99")
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, {**request.headers, "webhook-id": "msg_other"})


def test_a_non_2xx_answer_is_a_failure_with_the_status_and_a_short_reason(receiver, sender):
    receiver.respond_with(503, times=1, body=b"down for maintenance " * 100)

    failed = deliver(sender, receiver.url, new_secret())
    retried = deliver(sender, receiver.url, new_secret())

    assert not failed.ok and failed.status_code == 503
    assert failed.error is not None and failed.error.startswith("HTTP 503: down for maintenance")
    assert len(failed.error) <= len("HTTP 503: ") + 200
    assert retried.ok and retried.status_code == 200
    assert len(receiver.wait_for(2)) == 2


def test_an_empty_error_answer_still_says_what_happened(receiver, sender):
    receiver.respond_with(410)

    delivered = deliver(sender, receiver.url, new_secret())

    assert (delivered.ok, delivered.status_code, delivered.error) == (False, 410, "HTTP 410 Gone")


def test_a_receiver_slower_than_the_timeout_is_a_failure_not_a_hang(receiver):
    receiver.delay(3.0)

    with WebhookSender(timeout=0.5) as sender:
        delivered = deliver(sender, receiver.url, new_secret())

    assert not delivered.ok and delivered.status_code is None
    assert delivered.error == "timed out after 0.5 s"
    assert delivered.duration_ms < 2000
    receiver.wait_for(1)


def test_a_refused_connection_is_a_failure(sender):
    delivered = deliver(sender, f"http://127.0.0.1:{closed_port()}/hook", new_secret())

    assert (delivered.ok, delivered.status_code, delivered.error) == (False, None, "connection refused")


def test_redirects_are_not_followed(receiver, sender):
    with WebhookReceiver() as elsewhere:
        receiver.respond_with(302, headers={"Location": elsewhere.url})

        delivered = deliver(sender, receiver.url, new_secret())

        assert not delivered.ok and delivered.status_code == 302
        assert delivered.error == f"HTTP 302: redirect to {elsewhere.url} not followed"
        assert elsewhere.requests == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "127.0.0.1/hook", "http://[::zz]/hook"])
def test_an_unusable_url_is_a_failure_not_an_exception(sender, url):
    delivered = deliver(sender, url, new_secret())

    assert not delivered.ok and delivered.status_code is None
    assert delivered.error is not None and delivered.error.startswith("invalid URL")


def test_the_client_ignores_proxy_settings_in_the_environment(receiver, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{closed_port()}")

    with WebhookSender(timeout=3.0) as fresh:
        assert deliver(fresh, receiver.url, new_secret()).ok

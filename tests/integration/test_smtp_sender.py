"""Email sent through smtplib to a real local SMTP server (aiosmtpd): plain, STARTTLS, implicit TLS, and the
failures, each sorted into permanent or worth retrying."""

from __future__ import annotations

import socket
import time

import pytest
from receivers import SmtpServer

from leadrelay.adapters.email import DeliveryFailed, Email, SmtpSender, SmtpSettings

LOGIN = ("relay", "s3cret-pass")
HANDOFF = Email(
    to=("rep@example.com",),
    subject="New lead for you: Zoë Ada",
    text="Zoë Ada (ada@example.com) reached 42 points.\n",
    html="<p><b>Zoë Ada</b> reached 42 points.</p>",
    headers={
        "List-Unsubscribe": "<https://leadrelay.example/unsubscribe/rep-1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-LeadRelay-Lead": "lead-17",
    },
    message_id="handoff-17",
)


def sender_for(server: SmtpServer, **settings) -> SmtpSender:
    settings = {"host": server.host, "port": server.port, "timeout": 3.0, **settings}
    return SmtpSender(SmtpSettings(**settings), ssl_context=server.client_ssl_context())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_plain_delivery_arrives_whole():
    with SmtpServer() as server:
        sender_for(server).send(HANDOFF)

        [mail] = server.wait_for(1)

    assert mail.mail_from == "leadrelay@localhost"
    assert mail.recipients == ("rep@example.com",)
    assert not mail.tls and mail.login is None
    message = mail.message
    assert message["From"] == "LeadRelay <leadrelay@localhost>"
    assert message["To"] == "rep@example.com"
    assert message["Subject"] == HANDOFF.subject
    assert message["Message-ID"] == "<handoff-17@leadrelay>"
    assert message["Date"].datetime is not None and abs(message["Date"].datetime.timestamp() - time.time()) < 60
    assert message["List-Unsubscribe"] == "<https://leadrelay.example/unsubscribe/rep-1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-LeadRelay-Lead"] == "lead-17"
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == HANDOFF.text
    assert message.get_body(("html",)).get_content().strip() == HANDOFF.html


def test_a_text_only_email_to_several_recipients_gets_a_fresh_message_id():
    with SmtpServer() as server:
        sender = sender_for(server)
        sender.send(Email(to=("a@example.com", "b@example.com"), subject="Digest", text="Two leads."))
        sender.send(Email(to=("a@example.com",), subject="Digest", text="One lead."))

        first, second = server.wait_for(2)

    assert first.recipients == ("a@example.com", "b@example.com")
    assert first.message.get_content_type() == "text/plain"
    assert first.message.get_content() == "Two leads.\n"
    assert first.message["Message-ID"].endswith("@leadrelay>")
    assert first.message["Message-ID"] != second.message["Message-ID"]


def test_starttls_with_login():
    with SmtpServer(tls="starttls", auth=LOGIN) as server:
        sender_for(server, security="starttls", username=LOGIN[0], password=LOGIN[1]).send(HANDOFF)

        [mail] = server.wait_for(1)

    assert mail.tls and mail.login == "relay"
    assert mail.message["Subject"] == HANDOFF.subject


def test_implicit_tls_with_login():
    with SmtpServer(tls="tls", auth=LOGIN) as server:
        sender_for(server, security="tls", username=LOGIN[0], password=LOGIN[1]).send(HANDOFF)

        [mail] = server.wait_for(1)

    assert mail.tls and mail.login == "relay"


def test_a_server_certificate_from_an_untrusted_ca_is_refused():
    with SmtpServer(tls="starttls") as server:
        settings = SmtpSettings(host=server.host, port=server.port, security="starttls", timeout=3.0)

        with pytest.raises(DeliveryFailed, match="certificate .* not trusted") as failed:
            SmtpSender(settings).send(HANDOFF)

        assert server.messages == []
    assert not failed.value.permanent


def test_a_wrong_password_is_permanent():
    with SmtpServer(tls="starttls", auth=LOGIN) as server:
        sender = sender_for(server, security="starttls", username=LOGIN[0], password="wrong")

        with pytest.raises(DeliveryFailed, match="refused the login of 'relay': 535") as failed:
            sender.send(HANDOFF)

        assert server.messages == []
    assert failed.value.permanent


def test_sending_without_the_login_a_server_requires_is_permanent():
    with SmtpServer(tls="starttls", auth=LOGIN) as server:
        with pytest.raises(DeliveryFailed, match="530") as failed:
            sender_for(server, security="starttls").send(HANDOFF)

        assert server.messages == []
    assert failed.value.permanent


def test_a_login_the_server_does_not_offer_in_clear_text_is_permanent():
    with SmtpServer(auth=LOGIN) as server:
        with pytest.raises(DeliveryFailed, match="AUTH") as failed:
            sender_for(server, username=LOGIN[0], password=LOGIN[1]).send(HANDOFF)

        assert server.messages == []
    assert failed.value.permanent


def test_starttls_asked_of_a_server_without_it_is_permanent():
    with SmtpServer() as server:
        with pytest.raises(DeliveryFailed, match="STARTTLS") as failed:
            sender_for(server, security="starttls").send(HANDOFF)

        assert server.messages == []
    assert failed.value.permanent


def test_a_refused_recipient_is_permanent():
    with SmtpServer(reject={"Gone@Example.com"}) as server:
        with pytest.raises(DeliveryFailed, match=r"refused gone@example.com \(550 5.1.1") as failed:
            sender_for(server).send(Email(to=("gone@example.com",), subject="Lead", text="Hi"))

        assert server.messages == []
    assert failed.value.permanent


def test_a_recipient_refused_for_now_is_worth_retrying():
    with SmtpServer(reject={"busy@example.com"}, reject_reply="451 4.3.0 Try again later") as server:
        with pytest.raises(DeliveryFailed, match="451 4.3.0 Try again later") as failed:
            sender_for(server).send(Email(to=("busy@example.com",), subject="Lead", text="Hi"))

        assert server.messages == []
    assert not failed.value.permanent


def test_one_refused_recipient_among_several_is_reported_after_the_others_got_it():
    with SmtpServer(reject={"gone@example.com"}) as server:
        with pytest.raises(DeliveryFailed, match="refused gone@example.com .*other recipients") as failed:
            sender_for(server).send(Email(to=("rep@example.com", "gone@example.com"), subject="Lead", text="Hi"))

        [mail] = server.wait_for(1)
    assert mail.recipients == ("rep@example.com",)
    assert failed.value.permanent


def test_nothing_listening_is_worth_retrying():
    port = closed_port()
    sender = SmtpSender(SmtpSettings(port=port, timeout=3.0))

    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match=f"connection refused by 127.0.0.1:{port}") as failed:
        sender.send(HANDOFF)

    assert not failed.value.permanent
    assert time.monotonic() - started < 3


def test_a_server_that_never_greets_times_out_and_is_worth_retrying():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        sender = SmtpSender(SmtpSettings(port=silent.getsockname()[1], timeout=0.5))

        with pytest.raises(DeliveryFailed, match="timed out after 0.5 s") as failed:
            sender.send(HANDOFF)

    assert not failed.value.permanent


@pytest.mark.parametrize(
    "email",
    [
        Email(to=("rep@example.com",), subject="Lead\r\nBcc: victim@example.com", text="Hi"),
        Email(to=("rep@example.com",), subject="Lead\nX-Injected: 1", text="Hi"),
        Email(to=("rep@example.com\r\nBcc: victim@example.com",), subject="Lead", text="Hi"),
        Email(to=("rep@example.com",), subject="Lead", text="Hi", headers={"X-Lead": "1\r\nBcc: victim@example.com"}),
        Email(to=("rep@example.com",), subject="Lead", text="Hi", headers={"X-Lead\r\nBcc": "victim@example.com"}),
        Email(to=("rep@example.com",), subject="Lead", text="Hi", message_id="id\r\nBcc: victim@example.com"),
    ],
    ids=["subject-crlf", "subject-lf", "address", "header-value", "header-name", "message-id"],
)
def test_line_breaks_in_headers_are_refused_before_connecting(email):
    """The port is closed: had the sender tried to connect, the failure would be a refused connection instead."""
    sender = SmtpSender(SmtpSettings(port=closed_port(), timeout=3.0))

    with pytest.raises(DeliveryFailed) as failed:
        sender.send(email)

    assert failed.value.permanent
    assert "connection refused" not in str(failed.value)


def test_extra_headers_cannot_replace_the_ones_leadrelay_sets():
    sender = SmtpSender(SmtpSettings(port=closed_port(), timeout=3.0))

    with pytest.raises(DeliveryFailed, match="Bcc header is set by LeadRelay") as failed:
        sender.send(Email(to=("rep@example.com",), subject="Lead", text="Hi", headers={"Bcc": "x@example.com"}))

    assert failed.value.permanent

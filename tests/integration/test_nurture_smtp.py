"""Nurture emails go out many to a connection (the worker's rounds): against a real SMTP server (aiosmtpd), a
session sends several emails over one connection, goes on after a refused recipient, opens a new connection when
the server dropped the old one, and writes headers in any language within SMTP's line limits."""

from __future__ import annotations

import re

import pytest
from receivers import SmtpServer

from leadrelay.adapters.email import DeliveryFailed, Email, SmtpSender, SmtpSettings


def sender_for(server: SmtpServer) -> SmtpSender:
    return SmtpSender(SmtpSettings(host=server.host, port=server.port, timeout=3.0))


def test_a_session_sends_many_emails_and_goes_on_after_a_refused_recipient():
    with SmtpServer(reject={"gone@acme.example"}) as server, sender_for(server).session() as session:
        session.send(Email(to=("a@acme.example",), subject="One", text="1"))
        with pytest.raises(DeliveryFailed, match="550") as refused:
            session.send(Email(to=("gone@acme.example",), subject="Two", text="2"))
        session.send(Email(to=("b@acme.example",), subject="Three", text="3", sender="News <news@relay.example>"))

        first, third = server.wait_for(2)

    assert refused.value.permanent
    assert [first.message["Subject"], third.message["Subject"]] == ["One", "Three"]
    assert third.mail_from == "news@relay.example" and third.message["From"] == "News <news@relay.example>"


def test_a_connection_the_server_dropped_is_opened_again():
    with SmtpServer() as server:
        session = sender_for(server).session()
        session.send(Email(to=("a@acme.example",), subject="Before", text="1"))
        session._smtp.sock.close()  # type: ignore[union-attr]  # as a server closing an idle connection looks
        session.send(Email(to=("b@acme.example",), subject="After", text="2"))
        session.close()

        assert [mail.message["Subject"] for mail in server.wait_for(2)] == ["Before", "After"]


def test_headers_in_any_language_keep_to_smtps_line_limits():
    subject = "Wie Teams wie Müller & Söhne GmbH ihre Leads übergeben – eine Fallstudie " * 3
    with SmtpServer() as server:
        sender_for(server).send(Email(to=("a@acme.example",), subject=subject.strip(), text="Grüße\n",
                                      html="<p>Grüße</p>", sender="Sofía Ramírez <sofia@relay.example>"))

        [mail] = server.wait_for(1)

    assert mail.message["Subject"] == subject.strip()
    assert mail.message["From"] == "Sofía Ramírez <sofia@relay.example>"
    assert mail.message.get_body(("plain",)).get_content() == "Grüße\n"
    assert max(len(line) for line in mail.raw.split(b"\r\n")) <= 998
    assert all(len(word) <= 76 for word in re.findall(rb"=\?utf-8\?[qb]\?[^?]*\?=", mail.raw))

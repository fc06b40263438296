"""The links in a nurture email: signed tokens that refuse any change, tracked links that can only
lead where the email pointed, the open pixel, the unsubscribe link, and lead data that stays text."""

from __future__ import annotations

from leadrelay.adapters.email_links import LinkSigner, track_html
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.domain.processing import new_lead
from leadrelay.services.nurture import render, template_values

from .builders import T0

SIGNER = LinkSigner(b"0123456789abcdef0123456789abcdef", "https://relay.example/")


def test_a_token_reads_back_only_unchanged_and_for_what_it_was_made():
    token = SIGNER.token("click", {"k": "abc", "u": "https://acme.example/a"})
    payload, _, signature = token.partition(".")

    assert SIGNER.read("click", token) == {"k": "abc", "u": "https://acme.example/a"}
    assert SIGNER.read("open", token) is None  # a click token is no open token
    assert SIGNER.read("click", payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + signature) is None
    assert SIGNER.read("click", payload + "." + signature[:-1]) is None
    assert SIGNER.read("click", token + "x") is None
    assert LinkSigner(b"another secret, just as long!!!!", "https://relay.example").read("click", token) is None
    for junk in ("", ".", "abc", "a.b.c", "é.é", "A" * 10_000):
        assert SIGNER.read("click", junk) is None


def test_web_links_are_tracked_and_mailto_and_own_links_are_left_alone():
    body = ('<html><body><a href="https://acme.example/x?a=1&amp;b=2">x</a> <a href=\'mailto:hi@acme.example\'>m</a>'
            '<a href="https://relay.example/email/unsubscribe/t">u</a></body></html>')

    tracked, links = track_html(body, SIGNER, "key1", "https://relay.example/email/unsubscribe/t")

    assert links == ["https://acme.example/x?a=1&b=2"]  # the address as the reader's browser reads it
    assert "mailto:hi@acme.example" in tracked and 'href="https://relay.example/email/unsubscribe/t"' in tracked
    assert tracked.count("Unsubscribe") == 0  # the email shows its own unsubscribe link
    assert tracked.index('<img src="https://relay.example/email/open/') < tracked.index("</body>")


def test_an_email_gets_the_unsubscribe_link_headers_and_escaped_lead_data():
    playbook = parse_playbook(default_playbook_text())
    lead = new_lead("ann@acme.example", playbook, T0)
    lead.fields.update(name='<a href="https://evil.example">Ann</a> Lee', company="Acme & Co")

    email = render(playbook.email_templates["welcome"], template_values(lead, None, playbook.sequences["welcome"]),
                   SIGNER, "key1")

    assert email.subject == 'Welcome, <a: where to start'  # the first word of the name, as text
    assert "evil.example" not in (email.html or "").replace("&lt;a href=&#34;https://evil.example&#34;&gt;", "")
    assert "Acme &amp; Co" in (email.html or "") and "from Acme & Co." in email.text
    assert email.links == ["https://www.leadrelay.example/guides/start"]
    unsubscribe = email.headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://relay.example/email/unsubscribe/")
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in email.text and SIGNER.read("unsubscribe", unsubscribe.rsplit("/", 1)[1]) == {"k": "key1"}


def test_a_missing_value_renders_its_fallback():
    playbook = parse_playbook(default_playbook_text())
    lead = new_lead("ann@gmail.com", playbook, T0)

    email = render(playbook.email_templates["case_study"], template_values(lead, None, playbook.sequences["welcome"]),
                   SIGNER, "key2")

    assert email.subject == "How teams like yours hand off leads in minutes"
    assert email.text.startswith("Hi there,")

"""Where webhooks may go: never back to this server (its listening address and port, its public
URL), never to link-local or cloud metadata addresses; private and loopback receivers allowed
unless the server refuses them all. Names are resolved by a fake resolver here (the real one in
the end-to-end tests), so every case is exact."""

from __future__ import annotations

import socket

import pytest

from leadrelay.domain.errors import InvalidInput
from leadrelay.services.webhooks import UrlPolicy, delivery_guard

NAMES = {
    "localhost": ["127.0.0.1", "::1"],
    "metadata.internal": ["169.254.169.254"],
    "sneaky.example": ["93.184.216.34", "169.254.10.10"],  # one good address, one link-local
    "crm.example": ["93.184.216.34"],
    "relay.example.com": ["203.0.113.7"],
    "intranet.corp": ["10.20.30.40"],
    socket.gethostname(): ["10.1.2.3"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    host = host.strip("[]").lower()
    if host in NAMES:
        return NAMES[host]
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return [host]
    except OSError:
        return []


def policy(*own: tuple[str, int], allow_private: bool = True) -> UrlPolicy:
    return UrlPolicy(own=own, allow_private=allow_private, resolver=fake_resolver)


SERVER = policy(("127.0.0.1", 8000), ("relay.example.com", 443))


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/api/v1/webhooks", "http://localhost:8000/api/v1/leads", "http://[::ffff:127.0.0.1]:8000/",
    "https://relay.example.com/api/v1/audit", "http://203.0.113.7:443/",
])
def test_a_webhook_cannot_point_at_this_server(url: str) -> None:
    with pytest.raises(InvalidInput, match="this LeadRelay server itself"):
        SERVER.check(url)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://metadata.internal/", "http://sneaky.example/hook",
    "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/", "http://0.0.0.0:9000/",
    "http://224.0.0.1/",
])
def test_link_local_metadata_and_unusable_addresses_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        SERVER.check(url)
    assert refused.value.code == "url_not_allowed"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/hook", "http://localhost:8001/hook", "http://intranet.corp/hook",
    "https://crm.example/hook", "http://192.168.1.20:8000/hook", "https://not-resolving.example/hook",
])
def test_receivers_elsewhere_on_this_machine_and_network_are_allowed_by_default(url: str) -> None:
    SERVER.check(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/", "http://intranet.corp/", "http://[::1]:9000/",
                                 "http://100.64.0.9/", "http://192.168.1.20/"])
def test_private_and_loopback_receivers_are_refused_when_the_setting_says_so(url: str) -> None:
    with pytest.raises(InvalidInput, match="webhook_private_addresses"):
        policy(("127.0.0.1", 8000), allow_private=False).check(url)
    policy(allow_private=False).check("https://crm.example/hook")  # a public receiver still goes


def test_a_server_listening_on_every_address_refuses_each_of_them_on_its_port() -> None:
    everywhere = policy(("0.0.0.0", 8000))
    for url in ("http://10.1.2.3:8000/api/v1/webhooks", "http://127.0.0.1:8000/", "http://[::1]:8000/"):
        with pytest.raises(InvalidInput, match="itself"):
            everywhere.check(url)
    everywhere.check("http://10.1.2.3:9000/hook")


@pytest.mark.parametrize("url", ["ftp://crm.example/hook", "http:///nohost", "http://crm.example:99999/"])
def test_what_is_not_an_http_url_is_refused_clearly(url: str) -> None:
    with pytest.raises(InvalidInput, match="url:"):
        SERVER.check(url)


def test_a_delivery_goes_to_the_address_checked_or_not_at_all() -> None:
    guard = delivery_guard(SERVER)
    assert guard("https://crm.example/hook") == ("93.184.216.34", "crm.example")
    for url, why in (("http://sneaky.example/hook", "link-local"), ("http://localhost:8000/", "itself"),
                     ("https://not-resolving.example/", "does not resolve")):
        with pytest.raises(ValueError, match=why):
            guard(url)

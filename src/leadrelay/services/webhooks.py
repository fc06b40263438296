"""Use cases on webhook subscriptions and the outbox they are delivered from; and where a
webhook may point.

Where webhooks may go: never to this server itself (its listening address and port, or its
public URL): a subscription must not make LeadRelay call its own admin API. Never to link-local
addresses (169.254.0.0/16, fe80::/10: cloud metadata services live there) nor to unspecified,
multicast or reserved ones. Private and loopback addresses are allowed by default (companies run
receivers on their own network); `allow_private=False` refuses them too. The URL is checked when
a subscription is made or changed, and again before each delivery on the addresses its host
resolves to then; the delivery goes to the address checked (not resolved again), and redirects
are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from leadrelay.adapters.outbox import Item, Webhook
from leadrelay.adapters.webhooks import new_secret
from leadrelay.domain.errors import InvalidInput, OutboxItemNotFound, WebhookNotFound
from leadrelay.services.unit_of_work import UnitOfWork

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]
METADATA = [ipaddress.ip_network(n) for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128",
                                              "100.100.100.200/32")]


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (an address literal: itself); none if it does not resolve."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})
    except (socket.gaierror, UnicodeError, OSError):
        return []


@dataclass(frozen=True)
class UrlPolicy:
    """Where webhooks may go. `own`: this server's (host, port) pairs — its listening address and
    its public URL's; a host of 0.0.0.0 or :: stands for every address of this machine."""

    own: tuple[tuple[str, int], ...] = ()
    allow_private: bool = True
    resolver: Resolver = field(default=resolve, compare=False)

    @classmethod
    def of(cls, settings: Any) -> UrlPolicy:
        """The policy of this server's settings (`host`, `port`, `public_url`, `webhook_private_addresses`)."""
        own = [(settings.host, settings.port)]
        if settings.public_url:
            public = urlsplit(settings.public_url)
            own.append((public.hostname or "", public.port or (443 if public.scheme == "https" else 80)))
        return cls(own=tuple(own), allow_private=settings.webhook_private_addresses)

    def _own_addresses(self) -> set[tuple[Address, int]]:
        found: set[tuple[Address, int]] = set()
        for host, port in self.own:
            addresses = [_address(a) for a in self.resolver(host, port)] if host else []
            if not host or any(a.is_unspecified for a in addresses):  # listening on every address
                addresses += [_address(a) for a in _machine_addresses(self.resolver)]
            found.update((address, port) for address in addresses)
        return found

    def check(self, url: str) -> list[str]:
        """The addresses the URL's host resolves to now, all of them allowed; InvalidInput, saying
        why, when the URL is not one webhooks may go to. A host that does not resolve passes
        (with no address): it is checked again at each delivery."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"url: {url!r} is not an http(s) URL with a host", "invalid_url")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InvalidInput(f"url: {url!r} has a port that is not a number from 0 to 65535", "invalid_url") from None
        host = parts.hostname
        addresses = [_address(a) for a in self.resolver(host, port)]
        own = self._own_addresses()
        own_names = {(h.lower(), p) for h, p in self.own}
        for address in addresses:
            why = refusal(address, self.allow_private)
            if why is None and ((address, port) in own or (host.lower(), port) in own_names):
                why = "it is this LeadRelay server itself"
            if why is not None:
                shown = host if str(address) == host.strip("[]") else f"{host} ({address})"
                raise InvalidInput(f"url: webhooks may not go to {shown}: {why}", "url_not_allowed")
        if (host.lower(), port) in own_names:
            raise InvalidInput(f"url: webhooks may not go to {host}:{port}: it is this LeadRelay server itself",
                               "url_not_allowed")
        return [str(address) for address in addresses]


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone index is not part of the address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _machine_addresses(resolver: Resolver) -> list[str]:
    names = {"localhost", socket.gethostname()}
    return ["127.0.0.1", "::1", *(a for name in names for a in resolver(name, 0))]


def refusal(address: Address, allow_private: bool) -> str | None:
    """Why webhooks may not go to this address, or None."""
    if any(address in network for network in METADATA) or address.is_link_local:
        return "link-local and cloud metadata addresses are refused"
    if address.is_unspecified or address.is_multicast:
        return "not an address a receiver can have"
    private = address.is_loopback or address.is_private or not address.is_global
    if private and not allow_private:
        return "private and loopback addresses are refused on this server (webhook_private_addresses)"
    if address.is_reserved and not (address.is_loopback or address.is_private):
        return "not an address a receiver can have"
    return None


def create(uow: UnitOfWork, *, name: str, url: str, events: list[str], now: datetime,
           policy: UrlPolicy | None = None) -> Webhook:
    """A new subscription with a new signing secret (shown to the caller once). Its URL is
    checked against `policy` (by default: no link-local or metadata address)."""
    (policy or UrlPolicy()).check(url)
    with uow:
        webhook = uow.outbox.add_webhook(name=name, url=url, secret=new_secret(), events=sorted(set(events)), now=now)
        uow.commit()
    return webhook


def find(uow: UnitOfWork) -> list[Webhook]:
    with uow:
        return uow.outbox.webhooks()


def get(uow: UnitOfWork, webhook_id: int) -> Webhook:
    with uow:
        return _webhook(uow, webhook_id)


def change(uow: UnitOfWork, webhook_id: int, values: dict[str, Any], *, policy: UrlPolicy | None = None) -> Webhook:
    if "url" in values:
        (policy or UrlPolicy()).check(values["url"])
    with uow:
        _webhook(uow, webhook_id)
        if "events" in values:
            values["events"] = sorted(set(values["events"]))
        webhook = uow.outbox.update_webhook(webhook_id, values)
        uow.commit()
    assert webhook is not None
    return webhook


def deliveries(uow: UnitOfWork, webhook_id: int, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """The subscription's delivery log, newest first: every attempt with its answer."""
    with uow:
        _webhook(uow, webhook_id)
        return uow.outbox.deliveries(webhook_id=webhook_id, before=before, limit=limit)


def outbox(uow: UnitOfWork, *, status: str | None, before: int | None, limit: int) -> list[Item]:
    with uow:
        return uow.outbox.page(status=status, webhook_id=None, before=before, limit=limit)


def retry(uow: UnitOfWork, item_id: int, now: datetime) -> Item:
    """Give a dead item another round of attempts, starting now."""
    with uow:
        if uow.outbox.get(item_id) is None:
            raise OutboxItemNotFound(f"no outbox item with id {item_id}")
        uow.outbox.retry(item_id, now)
        item = uow.outbox.get(item_id)
        uow.commit()
    assert item is not None
    return item


def _webhook(uow: UnitOfWork, webhook_id: int) -> Webhook:
    webhook = uow.outbox.webhook(webhook_id)
    if webhook is None:
        raise WebhookNotFound(f"no webhook with id {webhook_id}")
    return webhook


def delivery_guard(policy: UrlPolicy) -> Callable[[str], tuple[str, str]]:
    """For the sender: check a webhook's URL again just before delivering, and answer the address
    to connect to (the one checked, so a name cannot resolve elsewhere in between) with the URL's
    host; ValueError, saying why, when it may not be delivered."""

    def guard(url: str) -> tuple[str, str]:
        try:
            addresses = policy.check(url)
        except InvalidInput as error:
            raise ValueError(error.message.removeprefix("url: ")) from None
        if not addresses:
            raise ValueError(f"the host of {url} does not resolve")
        return addresses[0], urlsplit(url).hostname or ""

    return guard

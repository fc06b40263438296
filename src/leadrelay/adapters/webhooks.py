"""Signed outbound webhooks, by the Standard Webhooks convention (https://www.standardwebhooks.com).

Each delivery is one POST whose `webhook-id`, `webhook-timestamp` and `webhook-signature` headers let the receiver
check, with the shared secret, that LeadRelay sent exactly this body at about this time. `Idempotency-Key` repeats
the message id, so a receiver can drop a retried delivery it has already taken. Sending never raises for a network
problem: the outcome, good or bad, is a `Delivered` with a short reason a person can read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_ERROR_BODY = 200
_BODY_READ_LIMIT = 4 * MAX_ERROR_BODY


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after `whsec_` (the prefix and the padding may be left out)."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature: `v1,` and base64(HMAC-SHA256(key, "{id}.{timestamp}." + body))."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Delivered:
    """The outcome of one delivery: ok for a 2xx answer; otherwise the status (None when no answer came) and why."""

    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


def _header_safe(name: str, value: str) -> None:
    if not value or not value.isprintable() or not value.isascii():
        raise ValueError(f"{name} must be non-empty printable ASCII, got {value!r}")


def _short(text: str, limit: int = MAX_ERROR_BODY) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class WebhookSender:
    """POSTs signed webhooks over one reused HTTP client; redirects are not followed (a 3xx is a failure), and the
    environment's proxy settings are ignored."""

    def __init__(self, *, timeout: float = 10.0, user_agent: str = "LeadRelay",
                 guard: Callable[[str], tuple[str, str]] | None = None) -> None:
        """`guard(url)` answers the address to connect to and the URL's host, or raises ValueError
        (why the URL may not be called): each delivery then goes to that address, with the host in
        its Host header and TLS name, or is refused without a connection."""
        self.timeout = timeout
        self.guard = guard
        self.client = httpx.Client(
            timeout=timeout, follow_redirects=False, trust_env=False, headers={"User-Agent": user_agent}
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def send(
        self, url: str, secret: str, *, message_id: str, event_type: str, body: bytes, timestamp: int
    ) -> Delivered:
        """Deliver `body` (JSON) to `url`, signed with `secret`; ok when the answer is 2xx. Never raises: an unusable
        secret, id or event type is a failed delivery too."""
        started = time.perf_counter()
        try:
            _header_safe("message_id", message_id)
            _header_safe("event_type", event_type)
            signature = sign(secret, message_id, timestamp, body)
        except ValueError as error:
            return Delivered(False, None, f"cannot send: {error}", _ms_since(started))
        headers = {
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
            "Idempotency-Key": message_id,
            "LeadRelay-Event": event_type,
        }
        extensions: dict[str, str] = {}
        if self.guard is not None:
            try:
                address, host = self.guard(url)
            except ValueError as refused:
                return Delivered(False, None, f"not sent: {refused}", _ms_since(started))
            target = httpx.URL(url)
            headers["Host"] = target.netloc.decode("ascii")
            extensions["sni_hostname"] = host
            url = str(target.copy_with(host=address))
        try:
            with self.client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response:
                status = response.status_code
                answer = _read_some(response)
                error = None if 200 <= status < 300 else _http_error(response, answer)
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            return Delivered(False, None, self._network_error(failure), _ms_since(started))
        return Delivered(error is None, status, error, _ms_since(started))

    def _network_error(self, error: Exception) -> str:
        if isinstance(error, httpx.ConnectTimeout):
            return f"connection timed out after {self.timeout:g} s"
        if isinstance(error, httpx.TimeoutException):
            return f"timed out after {self.timeout:g} s"
        if isinstance(error, httpx.InvalidURL | httpx.UnsupportedProtocol):
            return f"invalid URL: {error}"
        if _cause(error, ConnectionRefusedError) is not None:
            return "connection refused"
        certificate = _cause(error, ssl.SSLCertVerificationError)
        if certificate is not None:
            return f"TLS certificate not trusted: {getattr(certificate, 'verify_message', '') or certificate}"
        if isinstance(error, httpx.ConnectError):
            return f"could not connect: {error}"
        if isinstance(error, httpx.RemoteProtocolError):
            return f"bad answer: {error}"
        return _short(f"{type(error).__name__}: {error}")


def _read_some(response: httpx.Response) -> bytes:
    """The start of the answer's body (the whole of a short one, so that the connection can be reused)."""
    received = b""
    try:
        for chunk in response.iter_bytes():
            received += chunk
            if len(received) >= _BODY_READ_LIMIT:
                break
    except httpx.HTTPError:
        pass
    return received


def _http_error(response: httpx.Response, answer: bytes) -> str:
    status = response.status_code
    if response.is_redirect:
        return f"HTTP {status}: redirect to {_short(response.headers.get('location', '(nowhere)'))} not followed"
    text = _short(answer.decode("utf-8", errors="replace"))
    return f"HTTP {status}: {text}" if text else f"HTTP {status} {response.reason_phrase}".rstrip()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

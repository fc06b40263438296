"""Email out through an SMTP server: one message, one connection.

Every failure is a `DeliveryFailed` that says whether trying again can help: `permanent` when the server said no
with a 5xx answer (a refused recipient, wrong credentials) or cannot do what the settings ask (no STARTTLS, no
AUTH); not permanent for connection problems and 4xx answers. A subject, address or header value holding a line
break is refused before connecting, so nobody can inject headers through lead data.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

Security = Literal["none", "starttls", "tls"]

_LINE_BREAKS = frozenset("\r\n\v\f\x00\x1c\x1d\x1e\x85\u2028\u2029")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_SET_BY_LEADRELAY = frozenset(
    {"from", "sender", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "content-type",
     "content-transfer-encoding"}
)


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to reach the SMTP server; `security` "tls" is implicit TLS (usually port 465)."""

    host: str = "127.0.0.1"
    port: int = 25
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    sender: str = "LeadRelay <leadrelay@localhost>"
    timeout: float = 10.0


class DeliveryFailed(Exception):
    """An email not sent; `permanent` says trying the same message again will not help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Email:
    """One message: plain text, optionally an HTML alternative, and extra headers (such as List-Unsubscribe).
    `message_id` becomes the Message-ID `<{message_id}@leadrelay>`; without one a random id is made."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            object.__setattr__(self, "to", (self.to,))
        elif not isinstance(self.to, tuple):
            object.__setattr__(self, "to", tuple(self.to))


def _refuse_line_breaks(what: str, value: str) -> None:
    if any(character in _LINE_BREAKS for character in value):
        raise DeliveryFailed(f"{what} holds a line break (header injection refused): {value!r}", permanent=True)


def build_message(email: Email, sender: str) -> EmailMessage:
    """The MIME message for `email` from `sender`; DeliveryFailed (permanent) for a header that cannot be sent."""
    if not email.to:
        raise DeliveryFailed("the email has no recipient", permanent=True)
    _refuse_line_breaks("the sender", sender)
    _refuse_line_breaks("the subject", email.subject)
    for address in email.to:
        _refuse_line_breaks("a recipient address", address)
        if not address.strip():
            raise DeliveryFailed("a recipient address is empty", permanent=True)
    if email.message_id is not None:
        _refuse_line_breaks("the message id", email.message_id)
        if not re.fullmatch(r"[^\s<>@]+", email.message_id):
            problem = f"{email.message_id!r} is not a message id (it needs a character, and no space, '<', '>' or '@')"
            raise DeliveryFailed(problem, permanent=True)
    for name, value in email.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise DeliveryFailed(f"{name!r} is not a header name", permanent=True)
        if name.lower() in _SET_BY_LEADRELAY:
            raise DeliveryFailed(f"the {name} header is set by LeadRelay, not by extra headers", permanent=True)
        _refuse_line_breaks(f"the {name} header", value)

    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(email.to)
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{email.message_id}@leadrelay>" if email.message_id else make_msgid(domain="leadrelay")
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()


class SmtpSender:
    """Sends each email over its own SMTP connection: connect (TLS as the settings say), log in when a username is
    set, send, quit."""

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def send(self, email: Email) -> None:
        """Send `email` to all its recipients, or raise DeliveryFailed."""
        message = build_message(email, self.settings.sender)
        try:
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error) from error
        try:
            if self.settings.security == "starttls":
                smtp.starttls(context=self.ssl_context)
            if self.settings.username is not None:
                smtp.login(self.settings.username, self.settings.password or "")
            refused = smtp.send_message(message, to_addrs=list(email.to))
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error) from error
        finally:
            _quit(smtp)
        if refused:
            raise DeliveryFailed(
                f"{self.server} refused {_refused(refused)} (the other recipients were sent the email)",
                permanent=all(_is_permanent(code) for code, _ in refused.values()),
            )

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        if settings.security == "tls":
            return smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=self.ssl_context)
        return smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)

    def _failure(self, error: Exception) -> DeliveryFailed:
        server = self.server
        match error:
            case smtplib.SMTPRecipientsRefused():
                refused = error.recipients
                return DeliveryFailed(
                    f"{server} refused {_refused(refused)}",
                    permanent=all(_is_permanent(code) for code, _ in refused.values()),
                )
            case smtplib.SMTPAuthenticationError():
                answer = _reply(error.smtp_code, error.smtp_error)
                return DeliveryFailed(
                    f"{server} refused the login of {self.settings.username!r}: {answer}",
                    permanent=_is_permanent(error.smtp_code),
                )
            case smtplib.SMTPSenderRefused():
                return DeliveryFailed(
                    f"{server} refused the sender {error.sender}: {_reply(error.smtp_code, error.smtp_error)}",
                    permanent=_is_permanent(error.smtp_code),
                )
            case smtplib.SMTPResponseException():
                return DeliveryFailed(
                    f"{server} answered {_reply(error.smtp_code, error.smtp_error)}",
                    permanent=_is_permanent(error.smtp_code),
                )
            case smtplib.SMTPServerDisconnected() if isinstance(error.__context__, TimeoutError):
                return DeliveryFailed(f"{server} timed out after {self.settings.timeout:g} s", permanent=False)
            case smtplib.SMTPServerDisconnected():
                return DeliveryFailed(f"{server} closed the connection: {error}", permanent=False)
            case smtplib.SMTPNotSupportedError() | smtplib.SMTPException():
                return DeliveryFailed(f"{server}: {error}", permanent=True)
            case ssl.SSLCertVerificationError():
                return DeliveryFailed(
                    f"the TLS certificate of {server} is not trusted: {error.verify_message or error}", permanent=False
                )
            case ssl.SSLError() if error.reason == "WRONG_VERSION_NUMBER":
                return DeliveryFailed(
                    f"TLS with {server} failed: the server does not speak TLS from the start (is it STARTTLS?)",
                    permanent=False,
                )
            case ssl.SSLError():
                return DeliveryFailed(f"TLS with {server} failed: {error.reason or error}", permanent=False)
            case ConnectionRefusedError():
                return DeliveryFailed(f"connection refused by {server}", permanent=False)
            case TimeoutError():
                return DeliveryFailed(f"{server} timed out after {self.settings.timeout:g} s", permanent=False)
            case _:
                reason = getattr(error, "strerror", None) or error
                return DeliveryFailed(f"could not talk to {server}: {reason}", permanent=False)


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} ({_reply(code, text)})" for address, (code, text) in recipients.items())


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()

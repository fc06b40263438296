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
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any, Literal, Self

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
    `message_id` becomes the Message-ID `<{message_id}@leadrelay>`; without one a random id is made. `sender`
    (a From address) replaces the settings' sender for this message."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None
    sender: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.to, str):
            object.__setattr__(self, "to", (self.to,))
        elif not isinstance(self.to, tuple):
            object.__setattr__(self, "to", tuple(self.to))


def _refuse_line_breaks(what: str, value: str) -> None:
    if any(character in _LINE_BREAKS for character in value):
        raise DeliveryFailed(f"{what} holds a line break (header injection refused): {value!r}", permanent=True)


class _Wire(Compat32):
    """How messages are written for SMTP: CRLF line ends; a header that is ASCII (values with line breaks were
    refused, and text that is not ASCII is already in folded encoded words) is written as it is, not refolded:
    long links stay whole, and it is several times faster."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if isinstance(value, str) and value.isascii() and "\r" not in value:
            lines = value.split("\n")  # a line break is only ever a fold of encoded words made here
            if len(name) + len(lines[0]) < 990 and all(len(line) < 990 and line[:1] in (" ", "\t")
                                                         for line in lines[1:]):
                return f"{name}: {self.linesep.join(lines)}{self.linesep}"
        return super()._fold(name, value, sanitize)  # type: ignore[no-any-return]


_WIRE = _Wire(linesep="\r\n")
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # text stays readable on the wire (base64 only where a part needs it)


def _header(value: str) -> str:
    """A header value as it goes on the wire: text that is not ASCII as encoded words (RFC 2047), each short."""
    return value if value.isascii() else Header(value, "utf-8").encode(maxlinelen=76)


def _address(value: str) -> str:
    """A From address, its display name encoded when it is not ASCII."""
    name, address = parseaddr(value)
    return value if value.isascii() or not name else formataddr((name, address), charset="utf-8")


def build_message(email: Email, sender: str) -> Message:
    """The MIME message for `email` from `sender`; DeliveryFailed (permanent) for a header that cannot be sent."""
    if not email.to:
        raise DeliveryFailed("the email has no recipient", permanent=True)
    sender = email.sender or sender
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

    # the classic MIME classes: several times faster to build and write out than EmailMessage
    text = MIMEText(email.text, "plain", _UTF8)
    if email.html is None:
        message: Message = text
    else:
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(MIMEText(email.html, "html", _UTF8))
    message["From"] = _address(sender)
    message["To"] = _header(", ".join(email.to))
    message["Subject"] = _header(email.subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{email.message_id}@leadrelay>" if email.message_id else make_msgid(domain="leadrelay")
    for name, value in email.headers.items():
        message[name] = _header(value)
    return message


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}".strip()


class SmtpSender:
    """Sends each email over its own SMTP connection: connect (TLS as the settings say), log in when a username is
    set, send, quit. `session()` keeps one connection for many emails (the worker's rounds)."""

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def send(self, email: Email) -> None:
        """Send `email` to all its recipients, or raise DeliveryFailed."""
        with self.session() as session:
            session.send(email)

    def session(self) -> SmtpSession:
        return SmtpSession(self)

    def _open(self) -> smtplib.SMTP:
        """A connection ready to send: TLS and login done as the settings say."""
        try:
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            raise self._failure(error) from error
        try:
            if self.settings.security == "starttls":
                smtp.starttls(context=self.ssl_context)
            if self.settings.username is not None:
                smtp.login(self.settings.username, self.settings.password or "")
        except (smtplib.SMTPException, OSError) as error:
            _quit(smtp)
            raise self._failure(error) from error
        return smtp

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


class SmtpSession:
    """One SMTP connection for several emails, opened at the first and closed by `close()` (or the `with` block's
    end). A connection the server dropped in between is opened again once; a refused recipient leaves it usable."""

    def __init__(self, sender: SmtpSender) -> None:
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None

    def send(self, email: Email) -> None:
        """Send `email` to all its recipients, or raise DeliveryFailed."""
        sender = self.sender
        message = build_message(email, sender.settings.sender)
        envelope_from = parseaddr(email.sender or sender.settings.sender)[1]
        ascii_only = envelope_from.isascii() and all(address.isascii() for address in email.to)
        data = message.as_bytes(policy=_WIRE) if ascii_only else None
        reused = self._smtp is not None
        while True:
            if self._smtp is None:
                self._smtp = sender._open()
            try:
                if data is not None:
                    refused = self._smtp.sendmail(envelope_from, list(email.to), data)
                else:  # an international address: smtplib asks the server for SMTPUTF8
                    refused = self._smtp.send_message(message, envelope_from, list(email.to))
            except smtplib.SMTPServerDisconnected as error:
                self._smtp = None
                if reused:  # the server closed an idle connection: once more, on a new one
                    reused = False
                    continue
                raise sender._failure(error) from error
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
                raise sender._failure(error) from error  # smtplib reset the transaction: the connection goes on
            except (smtplib.SMTPException, OSError) as error:
                self.close()
                raise sender._failure(error) from error
            break
        if refused:
            raise DeliveryFailed(
                f"{sender.server} refused {_refused(refused)} (the other recipients were sent the email)",
                permanent=all(_is_permanent(code) for code, _ in refused.values()),
            )

    def close(self) -> None:
        if self._smtp is not None:
            smtp, self._smtp = self._smtp, None
            _quit(smtp)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _refused(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{address} ({_reply(code, text)})" for address, (code, text) in recipients.items())


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()

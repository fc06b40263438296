"""Real local receivers for tests: an HTTP server taking webhooks and an SMTP server taking email.

Both listen on 127.0.0.1 on a free port, run in a background thread, record what arrives (safe to read from the
test's thread) and are context managers that stop them. `wait_for(count)` waits, bounded, until that much has
arrived and fails the test with a clear message when it has not.

    with WebhookReceiver() as receiver:
        receiver.respond_with(500, times=2)         # the first two requests get 500, the rest 200
        ...
        first, *_ = receiver.wait_for(1)

    with SmtpServer(tls="starttls", auth=("relay", "secret")) as server:
        SmtpSender(SmtpSettings(port=server.port, ...), ssl_context=server.client_ssl_context()).send(...)
        [mail] = server.wait_for(1)
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, cast

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
WAIT = 5.0
T = TypeVar("T")


class _Recorder(Generic[T]):
    """A thread-safe list that can be waited on."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[T] = []
        self.changed = threading.Condition()

    def add(self, item: T) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def snapshot(self) -> list[T]:
        with self.changed:
            return list(self.items)

    def wait_for(self, count: int, timeout: float) -> list[T]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.items) >= count, timeout=timeout):
                raise AssertionError(
                    f"expected at least {count} {self.what} within {timeout:g} s, got {len(self.items)}"
                )
            return list(self.items)


# --- webhooks ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request as it arrived; header names are lower-case (repeated headers joined with ', ')."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


@dataclass(frozen=True)
class Answer:
    """What the receiver answers: a status, and optionally a body and headers (such as Location)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class _HookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 10
    server: _HookServer

    def _handle(self) -> None:
        receiver = self.server.receiver
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        receiver._requests.add(ReceivedRequest(self.command, self.path, headers, body, time.monotonic()))
        answer, delay = receiver._next_answer()
        if delay and receiver._closing.wait(delay):
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_POST = do_PUT = do_PATCH = do_GET = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers 200 (or as `respond_with` says)."""

    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self._requests: _Recorder[ReceivedRequest] = _Recorder("webhook request(s)")
        self._lock = threading.Lock()
        self._queued: deque[list[Any]] = deque()
        self._fallback = Answer(200)
        self._delay = 0.0
        self._closing = threading.Event()
        self._server = _HookServer((HOST, 0), _HookHandler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return cast(int, self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The requests so far (a copy)."""
        return self._requests.snapshot()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[ReceivedRequest]:
        """All requests once at least `count` have arrived; AssertionError after `timeout` seconds."""
        return self._requests.wait_for(count, timeout)

    def respond_with(
        self, status: int, times: int | None = None, *, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer `status` to the next `times` requests (after answers already queued that way), or, with
        `times=None`, to every request once the queued answers are spent. The default answer is 200."""
        answer = Answer(status, body, dict(headers or {}))
        with self._lock:
            if times is None:
                self._fallback = answer
            elif times > 0:
                self._queued.append([answer, times])

    def delay(self, seconds: float) -> None:
        """Wait `seconds` (after recording the request) before answering each request from now on."""
        with self._lock:
            self._delay = seconds

    def _next_answer(self) -> tuple[Answer, float]:
        with self._lock:
            if not self._queued:
                return self._fallback, self._delay
            step = self._queued[0]
            step[1] -= 1
            if step[1] == 0:
                self._queued.popleft()
            return step[0], self._delay

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=WAIT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


# --- email -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivedMail:
    """One email as the SMTP server took it: the envelope, the message (`raw` as it came, `message` parsed with its
    line ends turned into "\\n"), the login used and whether the connection was encrypted."""

    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    login: str | None
    tls: bool


class _MailHandler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.owner.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.owner.reject:
            return self.owner.reject_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        message = cast(EmailMessage, parsed)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        transport = server.transport
        tls = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.owner._messages.add(
            ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message, raw, login, tls)
        )
        return "250 OK: queued"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return cast(int, probe.getsockname()[1])


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts.

    `tls`: "starttls" offers and requires STARTTLS, "tls" speaks TLS from the first byte; the certificate, for
    127.0.0.1 and localhost, comes from a throwaway CA that `client_ssl_context()` trusts. `auth` (user, password)
    requires a login before MAIL FROM (530 otherwise), which aiosmtpd takes only over TLS: with `tls="none"` AUTH is
    not even offered. Recipients in `reject` are answered `reject_reply` (550 unless told)."""

    def __init__(
        self,
        *,
        tls: Literal["none", "starttls", "tls"] = "none",
        auth: tuple[str, str] | None = None,
        reject: set[str] | frozenset[str] = frozenset(),
        reject_reply: str = "550 5.1.1 Recipient address rejected",
    ) -> None:
        self.tls = tls
        self.auth = auth
        self.reject = {address.lower() for address in reject}
        self.reject_reply = reject_reply
        self._messages: _Recorder[ReceivedMail] = _Recorder("email(s)")
        self._ca = trustme.CA()
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(HOST, "localhost").configure_cert(server_context)
        options: dict[str, Any] = {"server_hostname": "smtp.leadrelay.test", "ready_timeout": WAIT}
        if tls == "tls":
            options["ssl_context"] = server_context
        elif tls == "starttls":
            options.update(tls_context=server_context, require_starttls=True)
        if auth is not None:
            # aiosmtpd counts only STARTTLS as TLS (under implicit TLS it must be told that AUTH may go ahead), and
            # warns when auth_required goes without auth_require_tls: so the login is required in handle_MAIL.
            options.update(authenticator=self._authenticate, auth_require_tls=tls != "tls")
        self.controller = self._start(options)
        self.host, self.port = HOST, cast(int, self.controller.port)

    def _start(self, options: dict[str, Any]) -> Controller:
        for attempt in range(3):
            controller = Controller(_MailHandler(self), hostname=HOST, port=_free_port(), **options)
            try:
                controller.start()
            except OSError:
                controller.stop(no_assert=True)
                if not controller.loop.is_closed():
                    controller.loop.close()
                if attempt == 2:
                    raise
            else:
                return controller
        raise AssertionError("unreachable")

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.auth is not None
        user, password = self.auth
        if isinstance(auth_data, LoginPassword) and auth_data == (user.encode(), password.encode()):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context (hostname checked) that trusts this server's throwaway CA, and nothing else."""
        return ssl.create_default_context(cadata=self._ca.cert_pem.bytes().decode("ascii"))

    @property
    def messages(self) -> list[ReceivedMail]:
        """The messages so far (a copy)."""
        return self._messages.snapshot()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[ReceivedMail]:
        """All messages once at least `count` have arrived; AssertionError after `timeout` seconds."""
        return self._messages.wait_for(count, timeout)

    def close(self) -> None:
        self.controller.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

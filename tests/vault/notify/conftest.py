"""Real receivers for the notification sinks: an HTTPS webhook and SMTP servers on loopback.

The webhook receiver is a threaded stdlib server over real TLS (a certificate
from the tests' CA) that records each request and answers with the statuses a
test queues (then 200).  The SMTP servers are aiosmtpd: one offers STARTTLS
and wants AUTH after it (and records whether each message came over TLS,
authenticated), one offers no STARTTLS at all.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.service_fixtures import (
    QuietHttpServer,
    free_tcp_port,
    server_tls_context,
    serving_in_a_thread,
)
from tests.tls_certificates import CertificateAuthority


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    while_answering: Callable[[], object] | None = None  # runs before each answer


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        site = cast(_Server, self.server).site
        length = int(self.headers.get("Content-Length", "0"))
        site.requests.append(
            Received(self.path, dict(self.headers.items()), self.rfile.read(length))
        )
        if site.while_answering is not None:
            site.while_answering()
        status, headers = site.answers.pop(0) if site.answers else (200, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(QuietHttpServer):
    site: WebhookReceiver


@pytest.fixture
def webhook_receiver(trusted_ca: CertificateAuthority) -> Iterator[WebhookReceiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = server_tls_context(trusted_ca).wrap_socket(server.socket, server_side=True)
    server.site = WebhookReceiver(f"https://127.0.0.1:{server.server_address[1]}/hooks/gwvault")
    with serving_in_a_thread(server, "webhook-receiver"):
        yield server.site


@dataclass(frozen=True)
class Mail:
    message: Message
    raw: bytes
    over_tls: bool
    authenticated: bool


@dataclass
class SmtpReceiver:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    mails: list[Mail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _MailHandler:
    def __init__(self, site: SmtpReceiver) -> None:
        self._site = site

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        mail = Mail(
            message_from_bytes(raw), raw, session.ssl is not None, bool(session.authenticated)
        )
        self._site.mails.append(mail)
        return "250 OK"


def _smtp_receiver(ca: CertificateAuthority | None) -> Iterator[SmtpReceiver]:
    site = SmtpReceiver(
        "127.0.0.1", free_tcp_port(), "gwvault-notify", "smtp-" + os.urandom(8).hex()
    )

    def authenticate(server: SmtpServer, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:  # fmt: skip
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            site.user.encode(), site.password.encode())  # fmt: skip
        site.logins.append("tls" if session.ssl is not None else "cleartext")
        return AuthResult(success=ok)

    kwargs: dict[str, Any] = {}
    if ca is not None:
        kwargs = {"tls_context": server_tls_context(ca), "require_starttls": True,
                  "authenticator": authenticate, "auth_require_tls": True}  # fmt: skip
    controller = Controller(_MailHandler(site), hostname=site.host, port=site.port,
                            server_hostname="localhost", ready_timeout=5, **kwargs)  # fmt: skip
    controller.start()
    try:
        yield site
    finally:
        controller.stop()


@pytest.fixture
def smtp_receiver(trusted_ca: CertificateAuthority) -> Iterator[SmtpReceiver]:
    """aiosmtpd with STARTTLS required and AUTH (LOGIN/PLAIN) only over TLS."""
    yield from _smtp_receiver(trusted_ca)


@pytest.fixture
def smtp_without_starttls() -> Iterator[SmtpReceiver]:
    yield from _smtp_receiver(None)


class MovingClock:
    """A clock a test moves forward by hand (the backoff's waits, no sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)

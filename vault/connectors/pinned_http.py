"""``http.client`` connections over a socket gwvault already opened.

The socket comes from ``proxy_tunnel.connect_routed``: to a checked address,
or through the admin's proxy.  ``http.client`` would otherwise resolve and
connect by itself, around both.  The HTTPS one verifies the destination's name
(SNI and the certificate) with the caller's context, end-to-end inside any
tunnel.  Shared by the HTTP data-source tester, webhooks and the audit trail's
HTTPS sink; ``post_verified`` is the whole POST the last two make.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from vault.connectors.deadline import Deadline
from vault.connectors.proxy_route import RouteChooser
from vault.connectors.proxy_tunnel import connect_routed
from vault.connectors.tls_policy import client_context

MAX_ANSWER_BYTES = 4096  # read and dropped: the status is the answer


class PinnedHTTPConnection(http.client.HTTPConnection):
    """``HTTPConnection`` to ``host:port`` over ``sock``, already connected."""

    def __init__(self, host: str, port: int, sock: socket.socket) -> None:
        super().__init__(host, port, timeout=sock.gettimeout())
        self._connected = sock

    def connect(self) -> None:
        self.sock = self._connected
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """The same over TLS, verifying ``host`` (SNI, certificate) with ``context``."""

    def __init__(self, host: str, port: int, sock: socket.socket, context: ssl.SSLContext) -> None:
        super().__init__(host, port, sock)
        self._context = context
        self._server_name = host

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)


@dataclass(frozen=True)
class PostAnswer:
    """What the server answered a POST: its status and ``Retry-After`` (never followed)."""

    status: int
    retry_after: str | None


def post_verified(
    host: str,
    port: int,
    target: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    ca_pem: str | None,
    proxy: RouteChooser | None,
    deadline: Deadline,
    step: float | None = None,
) -> PostAnswer:
    """POST ``body`` to ``https://host:port/target``, the server verified (verify-full:
    ``ca_pem``, else the system's CAs, and the name), through ``proxy`` when it routes
    ``host``; all of it within ``deadline``, each connect and read within ``step``.

    A redirect is an answer like any other (its status), never followed; the
    answer's body is read up to ``MAX_ANSWER_BYTES`` and dropped.  Raises
    ``ssl.SSLError`` or ``ssl.CertificateError`` (TLS), ``TimeoutError``,
    ``ProxyError`` (an ``OSError`` naming the proxy), another ``OSError`` or
    ``http.client.HTTPException``: the caller says what each means to it.
    """
    context = client_context("verify-full", ca_pem)
    if context is None:  # verify-full always has one
        raise AssertionError("no TLS context")
    sock = connect_routed(proxy, host, port, deadline, step=step)
    with sock, deadline.guarding(sock):
        connection = PinnedHTTPSConnection(host, port, sock, context)
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(MAX_ANSWER_BYTES)
            return PostAnswer(response.status, response.getheader("Retry-After"))
        finally:
            connection.close()

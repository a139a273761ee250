"""``http.client`` connections over a socket gwvault already opened.

The socket comes from ``proxy_tunnel.connect_routed``: to a checked address,
or through the admin's proxy.  ``http.client`` would otherwise resolve and
connect by itself, around both.  The HTTPS one verifies the destination's name
(SNI and the certificate) with the caller's context, end-to-end inside any
tunnel.  Shared by the HTTP data-source tester, webhooks and the audit trail's
HTTPS sink.
"""

from __future__ import annotations

import http.client
import socket
import ssl


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

"""One worker's listener: accept, count, shake hands, hand the connection on.

Connections are counted per client address before the TLS handshake, so a
flood of silent sockets from one address is refused at accept, not after
costing a handshake each.  The handshake runs on the event loop with its own
deadline: it never blocks accepting or serving anyone else (cheroot did every
handshake on its one accept thread, so one silent client stopped the server).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor

from web.server.connection import Endpoint, serve_connection
from web.server.first_contact import (
    HandshakeFailures,
    answer_plain_http,
    first_byte,
    is_plain_http,
)
from web.server.limits import ServerLimits
from web.server.wsgi_call import Peer, WsgiApp

log = logging.getLogger("gwvault.server")


class Listener:
    """Serves ``app`` over TLS on an already listening socket, in one event loop."""

    def __init__(
        self, app: WsgiApp, sock: socket.socket, tls: ssl.SSLContext, limits: ServerLimits
    ) -> None:
        self.sock, self.tls, self.limits = sock, tls, limits
        self.executor = ThreadPoolExecutor(limits.threads, thread_name_prefix="gwvault-app")
        self.endpoint = Endpoint(app, limits, self.executor, sock.getsockname()[1])
        self.by_address: collections.Counter[str] = collections.Counter()
        self.handshake_failures = HandshakeFailures()
        self.open = 0
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, grace_seconds: float = 10.0) -> None:
        """Serve until ``stop()``; then let requests in flight finish (up to the grace).

        A connection with no request in hand (a browser's idle keep-alive or
        preconnect) is closed at once, and so is each one that finishes its
        request during the grace: waiting for it would only wait for the client.
        """
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        accepting = asyncio.create_task(self._accept_all())
        try:
            await self._stopping.wait()
        finally:
            accepting.cancel()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    while self.open:
                        for task in list(self.endpoint.waiting):
                            task.cancel()
                        await asyncio.sleep(0.05)
            self.executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        """Stop accepting and end ``serve`` (thread-safe)."""
        if self.loop is not None and self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)

    async def _accept_all(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peername = await loop.sock_accept(self.sock)
            except OSError as e:  # EMFILE and the like: wait, do not spin
                log.error("accept failed: %s", e.strerror or type(e).__name__)
                await asyncio.sleep(0.1)
                continue
            address = str(peername[0])
            if (
                self.open >= self.limits.max_connections
                or self.by_address[address] >= self.limits.connections_per_address
            ):
                sock.close()  # before the handshake: a refused socket costs nothing more
                continue
            self.open += 1
            self.by_address[address] += 1
            task = loop.create_task(self._serve(sock, address, int(peername[1])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, sock: socket.socket, address: str, port: int) -> None:
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            # The first byte is peeked: a plain-HTTP request is told where
            # HTTPS is; silence or a close ends here (web.server.first_contact).
            try:
                with self.endpoint.waiting_for_a_request():
                    first = await first_byte(sock, self.limits.handshake_seconds)
            except asyncio.CancelledError:  # stopping: a socket that said nothing yet
                sock.close()
                raise
            if not first or is_plain_http(first):
                if first:
                    await answer_plain_http(sock, address)
                sock.close()
                return
            left = max(0.1, self.limits.handshake_seconds - (loop.time() - started))
            reader = asyncio.StreamReader(limit=READ_LIMIT)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                # The handshake runs on the loop, beside every other connection.
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol, sock, ssl=self.tls, ssl_handshake_timeout=left
                )
            except Exception as e:  # a timeout, a bad hello, a reset: this socket only
                self.handshake_failures.record(address, e)
                sock.close()
                return
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            await serve_connection(
                reader,
                writer,
                self.endpoint,
                Peer(address, port, self.endpoint.port),
                tls_failed=lambda e: self.handshake_failures.record(address, e),
            )
        finally:
            self._closed(address)

    def _closed(self, address: str) -> None:
        self.open -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]


# The stream buffer: one read chunk and a little more (h11 bounds the head itself).
READ_LIMIT = 64 * 1024


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; ``OSError`` if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock

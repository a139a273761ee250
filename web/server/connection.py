"""One client connection: read whole requests within their deadlines, answer each.

HTTP/1.1 framing is h11's (strict: no obsolete line folding, one
Content-Length, no Content-Length beside chunked), so this module only decides
when a client has taken too long or sent too much.  The app runs in a worker
thread only once a request is complete; while it waits for a slow client the
connection holds a socket and its buffer, never a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field

import h11

from web.server.limits import ServerLimits
from web.server.wsgi_call import Peer, Reply, WsgiApp, call_app, wsgi_environ

log = logging.getLogger("gwvault.server")

READ_CHUNK = 16 * 1024
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    """What every connection of one listener shares."""

    app: WsgiApp
    limits: ServerLimits
    executor: Executor
    port: int
    # The connections waiting for a request, no request in hand: on stop they
    # close at once, while requests in flight get the grace (Listener.serve).
    waiting: set[asyncio.Task[None]] = field(default_factory=set)

    @contextlib.contextmanager
    def waiting_for_a_request(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always called inside a task
            yield
            return
        self.waiting.add(task)
        try:
            yield
        finally:
            self.waiting.discard(task)


class ClientError(Exception):
    """The client broke a limit or the protocol: answer ``status`` and close."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Silent(Exception):
    """The client sent nothing within its time: close without an answer."""


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    endpoint: Endpoint,
    peer: Peer,
    tls_failed: Callable[[ssl.SSLError], None] | None = None,
) -> None:
    """Answer requests on one (TLS) connection until it closes, idles or misbehaves.

    ``tls_failed`` hears of a TLS error before the first answer: with TLS 1.3
    a client checks the certificate after the server's handshake is done, so
    a browser that does not trust it yet fails here, at the first read.
    """
    connection = _Connection(reader, writer, endpoint, peer)
    try:
        await connection.run()
    except ClientError as refused:
        await connection.refuse(refused)
    except ssl.SSLError as e:
        if not connection.answered and tls_failed is not None:
            tls_failed(e)
    except (_Silent, ConnectionError, h11.LocalProtocolError, OSError):
        pass  # closed below; nothing useful can be said to this client
    except Exception as e:  # a bug here must cost one connection, not the worker
        log.error("connection from %s failed: %s", peer.client_host, type(e).__name__)
    finally:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # The server is stopping and this connection had no request in
            # hand: no TLS goodbye is waited for (the client may never send one).
            writer.transport.abort()
        else:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


class _Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        endpoint: Endpoint,
        peer: Peer,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.endpoint, self.limits, self.peer = endpoint, endpoint.limits, peer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        self.loop = asyncio.get_running_loop()
        self.answered = 0

    async def run(self) -> None:
        wait = self.limits.head_seconds  # a new connection must speak at once
        while True:
            if not await self._first_bytes(wait):
                return
            request, body = await self._read_request()
            reply = await self._dispatch(request, body)
            await self._send(request, reply)
            self.answered += 1
            if self.h11.our_state is h11.MUST_CLOSE:
                return
            self.h11.start_next_cycle()
            wait = self.limits.idle_seconds

    async def _first_bytes(self, wait: float) -> bool:
        """Wait for the next request to begin; False when the client closed."""
        pipelined, closed = self.h11.trailing_data
        if pipelined:
            return True  # the next request is already here
        if closed:
            return False  # the client closed after its last request
        try:
            with self.endpoint.waiting_for_a_request():
                async with asyncio.timeout(wait):
                    data = await self.reader.read(READ_CHUNK)
        except TimeoutError:
            raise _Silent from None
        self.h11.receive_data(data)
        return bool(data)

    async def _read_request(self) -> tuple[h11.Request, bytes]:
        start = self.loop.time()
        deadline = start + self.limits.request_seconds
        request = await self._next_event(min(deadline, start + self.limits.head_seconds), "head")
        if not isinstance(request, h11.Request):
            raise ClientError(400, "bad_request", "the connection closed mid-request")
        self._check_head(request)
        if self.h11.client_is_waiting_for_100_continue:
            # curl and others hold a body of over 1 KiB back for a second unless
            # told to go on; a body refused above was refused before this.
            await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        body = bytearray()
        body_deadline = min(deadline, self.loop.time() + self.limits.body_seconds)
        while True:
            event = await self._next_event(body_deadline, "body")
            if isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            if not isinstance(event, h11.Data):
                raise ClientError(400, "bad_request", "the connection closed mid-request")
            body += event.data
            if len(body) > self.limits.max_body_bytes:
                raise _too_large(self.limits)

    def _check_head(self, request: h11.Request) -> None:
        """The head's size, its framing and its declared length, before any body is read."""
        # h11 bounds a head still arriving; one that came whole in a read is measured here.
        size = len(request.method) + len(request.target) + 12
        size += sum(len(name) + len(value) + 4 for name, value in request.headers)
        if size > self.limits.max_head_bytes:
            raise _head_too_large(self.limits)
        names = [name for name, _ in request.headers]
        if b"transfer-encoding" in names and b"content-length" in names:
            # Two framings: the request smuggling shape (RFC 9112 section 6.1).
            raise ClientError(400, "bad_request", "give Content-Length or chunked, not both")
        for name, value in request.headers:
            # h11 checked the digits; the length check keeps int() off a 5,000-digit one.
            if name == b"content-length" and (
                len(value) > 12 or int(value) > self.limits.max_body_bytes
            ):
                raise _too_large(self.limits)  # refused before a byte of it is read

    async def _next_event(self, deadline: float, phase: str) -> h11.Event | type[h11.PAUSED]:
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    event = self.h11.next_event()
                    if event is not h11.NEED_DATA:
                        return event  # type: ignore[return-value]  # NEED_DATA is excluded
                    self.h11.receive_data(await self.reader.read(READ_CHUNK))
        except TimeoutError:
            raise ClientError(
                408, "request_timeout", f"the request {phase} did not arrive in time"
            ) from None
        except h11.RemoteProtocolError as e:
            status = e.error_status_hint
            if status == 431:
                raise _head_too_large(self.limits) from None
            raise ClientError(status, "bad_request", "the request is not valid HTTP/1.1") from None

    async def _dispatch(self, request: h11.Request, body: bytes) -> Reply:
        environ = wsgi_environ(request, body, self.peer)
        try:
            return await self.loop.run_in_executor(
                self.endpoint.executor, call_app, self.endpoint.app, environ
            )
        except Exception as e:  # the app answers its own errors; this is a bug there
            log.error("the app failed outside its error handlers: %s", type(e).__name__)
            raise ClientError(500, "internal_error", "internal error") from None

    async def _send(self, request: h11.Request, reply: Reply) -> None:
        headers = reply.headers
        if request.method != b"HEAD":
            headers = [*headers, (b"content-length", str(len(reply.body)).encode("ascii"))]
        data = self.h11.send(
            h11.Response(status_code=reply.status, headers=headers, reason=reply.reason)
        )
        if request.method != b"HEAD" and reply.body:
            data += self.h11.send(h11.Data(data=reply.body))
        data += self.h11.send(h11.EndOfMessage())
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)  # one write: one TLS record where it fits, no Nagle stall
        try:
            async with asyncio.timeout(self.limits.write_seconds):
                await self.writer.drain()
        except TimeoutError:
            raise _Silent from None

    async def refuse(self, refused: ClientError) -> None:
        """Answer a refused request and let the connection close."""
        body = json.dumps({"error": {"code": refused.code, "message": refused.message}}).encode()
        reason = _REASONS.get(refused.status, b"Error")
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (refused.status, reason, len(body))
        )
        with contextlib.suppress(_Silent, ConnectionError, OSError):
            await self._write(head + body)
            await self._linger()

    async def _linger(self) -> None:
        """Read and drop what the client still sends, briefly, before closing.

        Closing a socket with unread bytes in it sends a reset, and a reset can
        make the client's TCP stack discard the answer it had not yet read
        (nginx's lingering close).  Bounded in time and bytes.
        """
        received = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                while received < LINGER_BYTES:
                    data = await self.reader.read(READ_CHUNK)
                    if not data:
                        return
                    received += len(data)


def _head_too_large(limits: ServerLimits) -> ClientError:
    return ClientError(
        431, "headers_too_large", f"the request head is over {limits.max_head_bytes} bytes"
    )


def _too_large(limits: ServerLimits) -> ClientError:
    return ClientError(413, "body_too_large", f"the body is over {limits.max_body_bytes} bytes")


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}

"""What happens before a connection carries its first HTTPS request.

Two things a person meets first: typing ``http://`` for the endpoint, and a
browser that has not yet accepted the self-signed certificate.

- Plain HTTP on the HTTPS port: the first byte of a TLS connection is a
  handshake record (0x16); an HTTP/1.x request starts with its method, in
  capital letters.  That byte is peeked (never consumed) before the
  handshake, and a plain request is answered with a short ``400`` in plain
  text that names the https:// address, instead of a reset the person cannot
  read.  At most ``PLAIN_READ_BYTES`` of it are read, within a second.
- Handshake failures: a browser that does not trust the certificate yet
  aborts each connection it opens, and clients close connections mid-hello;
  one line each would bury the log.  Each is logged at debug level and
  counted; one summary line (INFO) says how many of each kind failed, at
  most once per ``SUMMARY_SECONDS`` per worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable

log = logging.getLogger("gwvault.server")

PLAIN_READ_BYTES = 4096
PLAIN_SECONDS = 1.0
SUMMARY_SECONDS = 600.0
_HTTP_METHOD_FIRST_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# OpenSSL's names for a client's alert that it does not accept our certificate.
_UNTRUSTED_REASONS = frozenset({
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_ACCESS_DENIED",
})  # fmt: skip
_KINDS = {
    "untrusted": "the client does not trust the certificate (a browser before its warning is"
    " accepted: compare the fingerprint with gwvault tls show)",
    "closed": "closed by the client",
    "timeout": "no handshake in time",
    "refused": "no TLS version or cipher in common, or not TLS",
}


async def first_byte(sock: socket.socket, timeout: float) -> bytes:
    """The connection's first byte, peeked (left for the TLS handshake); b"" when the
    client closed or sent nothing in ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        async with asyncio.timeout(timeout):
            await readable
    except TimeoutError:
        return b""
    finally:
        loop.remove_reader(sock.fileno())
    try:
        return sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, OSError):
        return b""


def is_plain_http(first: bytes) -> bool:
    return len(first) == 1 and first[0] in _HTTP_METHOD_FIRST_BYTES


async def answer_plain_http(sock: socket.socket, client: str) -> None:
    """Tell a plain-HTTP client, in HTTP, where the HTTPS endpoint is; then close."""
    loop = asyncio.get_running_loop()
    url = _https_url(sock)
    body = f"This port speaks HTTPS only: use {url}/\n".encode("ascii")
    head = (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    )
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(PLAIN_SECONDS):
            # Read the request (bounded) so that closing does not reset the
            # connection before the client has read the answer.
            await loop.sock_recv(sock, PLAIN_READ_BYTES)
            await loop.sock_sendall(sock, head + body)
            sock.shutdown(socket.SHUT_WR)
            await loop.sock_recv(sock, PLAIN_READ_BYTES)
    logging.getLogger("gwvault.request").info(
        "plain-http from=%s status=400 (this port speaks HTTPS: %s)", client, url
    )


def _https_url(sock: socket.socket) -> str:
    # The address the client reached (not a Host header it chose): right even
    # when the endpoint listens on every address.
    host, port = sock.getsockname()[:2]
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


class HandshakeFailures:
    """Failed TLS handshakes of one worker: debug lines, and a periodic summary."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: collections.Counter[str] = collections.Counter()
        self._last_summary: float | None = None

    def record(self, client: str, error: BaseException) -> None:
        kind = failure_kind(error)
        log.debug("TLS handshake from %s failed: %s (%s)", client, _KINDS[kind], _reason(error))
        self._counts[kind] += 1
        now = self._clock()
        if self._last_summary is None or now - self._last_summary >= SUMMARY_SECONDS:
            self._summarize(now)

    def _summarize(self, now: float) -> None:
        since = "" if self._last_summary is None else f" in the last {SUMMARY_SECONDS / 60:.0f} min"
        parts = [f"{count} {_KINDS[kind]}" for kind, count in sorted(self._counts.items())]
        log.info("TLS handshakes that failed%s: %s", since, "; ".join(parts))
        self._counts.clear()
        self._last_summary = now


def failure_kind(error: BaseException) -> str:
    """Which of ``_KINDS`` a handshake (or first read) failure is."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLError) and _reason(error) in _UNTRUSTED_REASONS:
        return "untrusted"
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionError | EOFError):
        return "closed"
    return "refused"


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) else type(error).__name__

"""An HTTPS server that counts the requests it is serving at once.

Each request is held ``hold_seconds`` (the server's work, as a slow data
source would take), so tests that overlap show up in ``peak``.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

from agent_keys.private_files import memory_files
from tests.tls_certificates import CertificateAuthority, issue_server_certificate


@dataclass
class Concurrency:
    hold_seconds: float
    now: int = 0
    peak: int = 0
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1
            self.served += 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    counts: Concurrency

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: a client that gave up is not the test's business."""


class _Holding(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        counts = cast(_Server, self.server).counts
        counts.enter()
        try:
            time.sleep(counts.hold_seconds)  # the far end's work, not a wait for the test
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        finally:
            counts.leave()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextmanager
def counting_https_server(
    ca: CertificateAuthority, hold_seconds: float
) -> Iterator[tuple[int, Concurrency]]:
    """A TLS server on a free 127.0.0.1 port (certificate from ``ca``): its port
    and its counts; shut down on exit."""
    certificate = issue_server_certificate(ca)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with memory_files(certificate.cert_pem.encode(), certificate.key_pem.encode()) as (cert, key):
        context.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Holding)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.counts = Concurrency(hold_seconds)
    thread = threading.Thread(target=server.serve_forever, name="counting-https", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.counts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

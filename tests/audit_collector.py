"""A real HTTPS collector for the audit webhook sink: what it receives, appended to a file.

A threaded stdlib server over real TLS (a certificate from the tests' CA) that
appends each POSTed body to ``path`` as it arrives, as a log collector would,
and answers 200 (or the statuses a test queues).  ``stop`` closes the port;
``start`` listens on the same port again, so a sink's outage and return can be
played out.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

import pytest

from tests.service_fixtures import QuietHttpServer, server_tls_context
from tests.tls_certificates import CertificateAuthority


@dataclass
class AuditCollector:
    ca: CertificateAuthority
    path: Path
    port: int = 0
    answers: list[int] = field(default_factory=list)
    posts: int = 0
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/audit"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.socket = server_tls_context(self.ca).wrap_socket(server.socket, server_side=True)
        server.collector = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="audit-collector", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop as a collector process stops: the port closes and so does every
        connection it holds (a kept-alive one too)."""
        if self._server is not None and self._thread is not None:
            for connection in list(self._server.open_connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def entry_seqs(self) -> list[int]:
        return [r["seq"] for r in self.records() if r["type"] == "entry"]


class _Server(QuietHttpServer):
    allow_reuse_address = True
    collector: AuditCollector

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.open_connections: set[socket.socket] = set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection, as collectors do

    def setup(self) -> None:
        super().setup()
        cast(_Server, self.server).open_connections.add(self.connection)

    def finish(self) -> None:
        cast(_Server, self.server).open_connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        collector = cast(_Server, self.server).collector
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = collector.answers.pop(0) if collector.answers else 200
        if status == 200:
            with collector.path.open("ab") as f:
                f.write(body)
            collector.posts += 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def audit_collector(trusted_ca: CertificateAuthority, tmp_path: Path) -> Iterator[AuditCollector]:
    collector = AuditCollector(trusted_ca, tmp_path / "collected.jsonl")
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()

"""The benchmark's wrk driver sends the request it is given and counts what failed.

Run against a real TLS server on loopback that records what arrives, so a
broken Lua script (no token, no body: every request a fast 401) cannot pass
for a fast server.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from agent_keys.private_files import memory_files
from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from bench.load import Request
from bench.wrk import available, lua_script, run_wrk, run_wrk_at_once
from tests.service_fixtures import require_service
from vault.context import utc_now

BODY = {"datasource": "sales-db", "note": 'a "quoted" \\ value'}
TOKEN = "gwv_test-token"  # a dummy bearer token


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load needs
    seen: ClassVar[list[tuple[str, str, str, bytes]]] = []  # what arrived, in order

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        status = 200 if self.path == "/ok" else 401
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def _recording_server() -> Iterator[int]:
    identity = generate_tls_identity([], utc_now(), system_random)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with memory_files(identity.chain_pem, identity.private_key_pem().reveal()) as (chain, key):
        context.load_cert_chain(chain, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _request(path: str) -> Request:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    return Request("POST", path, json.dumps(BODY).encode(), headers)


@pytest.fixture
def wrk() -> None:
    if not available():
        require_service("wrk is not installed (apt-get install wrk)")


@pytest.mark.usefixtures("wrk")
def test_wrk_sends_the_token_and_body_and_counts_only_successes() -> None:
    _Recorder.seen = []
    with _recording_server() as port:
        good = run_wrk("127.0.0.1", port, _request("/ok"), connections=2, seconds=1)
        bad = run_wrk("127.0.0.1", port, _request("/refused"), connections=2, seconds=1)
    assert good.requests > 0
    assert good.errors == 0
    assert good.rate > 0
    assert 0 < good.p50_ms <= good.p99_ms <= good.max_ms
    assert good.client_cpu_seconds > 0
    assert bad.requests > 0
    assert bad.status_errors == bad.requests  # every 401 is an error...
    assert bad.rate == 0  # ...and none is counted as served
    arrived = {(method, path, auth, body) for method, path, auth, body in _Recorder.seen}
    assert arrived == {
        ("POST", "/ok", f"Bearer {TOKEN}", json.dumps(BODY).encode()),
        ("POST", "/refused", f"Bearer {TOKEN}", json.dumps(BODY).encode()),
    }


@pytest.mark.usefixtures("wrk")
def test_wrk_at_once_drives_every_server_together_and_times_each_process() -> None:
    """A cluster's members are loaded at the same time, one wrk each, not one after another."""
    _Recorder.seen = []
    with _recording_server() as first, _recording_server() as second:
        targets = [("127.0.0.1", first), ("127.0.0.1", second)]
        results = run_wrk_at_once(targets, _request("/ok"), connections=2, seconds=1)
    assert len(results) == 2
    for result in results:
        assert result.requests > 0
        assert result.errors == 0
        assert result.client_cpu_seconds > 0  # each process's own rusage
        assert result.client_wall_seconds < 1.9  # one after another, the second would take 2 s
    # wrk stops with requests in flight: the servers may have answered a few more than it counted.
    assert sum(r.requests for r in results) <= len(_Recorder.seen)


def test_the_lua_script_refuses_text_it_cannot_quote() -> None:
    request = Request("POST", "/", "caf\u00e9".encode(), {})
    with pytest.raises(ValueError, match="ASCII"):
        lua_script(request)

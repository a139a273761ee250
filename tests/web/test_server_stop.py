"""Stopping the endpoint: a connection with no request in hand (a browser's idle
keep-alive, a preconnect that said nothing) closes at once; a request in flight
still gets its answer within the grace."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from typing import Any

from tests.web_fixtures import WebVault, served
from vault.keys.tls import TlsService
from web.server.limits import ServerLimits
from web.server.listener import listening_socket
from web.server.tls import server_ssl_context
from web.server.workers import HttpsService, serving_in_thread

# serving_in_thread's grace is 2 s: a stop well under it did not wait for it.
WELL_UNDER_THE_GRACE = 1.0


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_idle_and_silent_connections_do_not_hold_the_stop(web_vault: WebVault) -> None:
    with served(web_vault) as server:
        kept = http.client.HTTPSConnection("127.0.0.1", server.port, context=_client_tls())
        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b'{"status":"ok"}\n'
        silent = socket.create_connection(("127.0.0.1", server.port))  # never speaks
        time.sleep(0.2)
        stopping = time.monotonic()
    took = time.monotonic() - stopping
    assert took < WELL_UNDER_THE_GRACE, took
    silent.close()
    kept.close()


def test_a_request_in_flight_is_answered_during_the_grace(web_vault: WebVault) -> None:
    started = threading.Event()

    def slow_app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        started.set()
        time.sleep(0.6)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    with web_vault.gateway() as gateway:
        identity = TlsService(gateway).server_identity()
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    service = HttpsService(slow_app, sock, server_ssl_context(identity), ServerLimits())
    answers: list[bytes] = []

    def ask() -> None:
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=_client_tls())
        connection.request("GET", "/")
        answers.append(connection.getresponse().read())

    asking = threading.Thread(target=ask)
    try:
        with serving_in_thread(service):
            asking.start()
            assert started.wait(10)
    finally:
        service.sock.close()
    asking.join(10)
    assert answers == [b"finished"]

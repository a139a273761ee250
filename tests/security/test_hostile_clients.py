"""Hostile clients against the real HTTPS endpoint (issue 15, threat T-WEB-20).

Each attack runs while a well-behaved client makes a request: silent TCP
sockets that never send a ClientHello, TLS connections that never send a
request, slowloris heads trickled a byte at a time, 64 MiB heads, oversized
bodies, one address opening too many connections.  The well-behaved request
must complete in under a second, and each attacker must be cut off by the
limit meant for it.  Bounded in ``make test``; ``make security`` holds the
attackers open for longer and repeats.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.security.scale import scaled
from tests.web.served_process import CLIENT_TLS, children_of, gwvault_serve
from tests.web_fixtures import LiveServer, WebVault, served
from web.server.limits import ServerLimits

GOOD_REQUEST_SECONDS = 1.0


def good_request_seconds(port: int, path: str = "/api/v1/status") -> float:
    """Time a new connection, handshake and one request (401 without a token is an answer)."""
    started = time.monotonic()
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=CLIENT_TLS)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.status == 401
    finally:
        connection.close()
    return time.monotonic() - started


def silent_tcp(port: int, count: int, source: str = "127.0.0.1") -> list[socket.socket]:
    """Connections that never send a byte (not even a ClientHello)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def tls_connection(port: int, source: str = "127.0.0.1") -> ssl.SSLSocket:
    raw = socket.socket()
    raw.bind((source, 0))
    raw.settimeout(10)
    raw.connect(("127.0.0.1", port))
    return CLIENT_TLS.wrap_socket(raw)


@contextlib.contextmanager
def slowloris(port: int, count: int, interval: float = 0.2) -> Iterator[list[ssl.SSLSocket]]:
    """``count`` TLS clients trickling one head byte each ``interval`` seconds, never done."""
    clients = [tls_connection(port) for _ in range(count)]
    stop = threading.Event()

    def trickle() -> None:
        head = b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 10_000
        for byte in head:
            for client in clients:
                with contextlib.suppress(OSError):
                    client.send(bytes([byte]))
            if stop.wait(interval):
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield clients
    finally:
        stop.set()
        thread.join(timeout=5)
        for client in clients:
            client.close()


def closed_by_server(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``sock`` (reading EOF or a reset), or None."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except (OSError, ssl.SSLError):
        pass
    return time.monotonic() - started


Record = Callable[[str, object], None]


def check_good_requests(port: int, count: int, record: Record, attack: str) -> None:
    """``count`` well-behaved requests each under a second; the worst is a figure."""
    times = [good_request_seconds(port) for _ in range(count)]
    record("cases", count)
    record("figure", f"{attack}: worst of {count} good requests {max(times) * 1000:.0f} ms")
    assert max(times) < GOOD_REQUEST_SECONDS, times


@pytest.mark.parametrize("silent", [1, 10, 100])
def test_silent_tcp_clients_do_not_delay_anyone(
    live_server: LiveServer, silent: int, record_property: Record
) -> None:
    sockets = silent_tcp(live_server.port, silent)
    try:
        time.sleep(0.2)  # the server has accepted them and is waiting for a ClientHello
        check_good_requests(
            live_server.port, scaled(3, 50), record_property, f"{silent} silent TCP clients"
        )
    finally:
        for sock in sockets:
            sock.close()


def test_silent_tls_clients_do_not_delay_anyone(
    live_server: LiveServer, record_property: Record
) -> None:
    """Handshake done, then nothing: cheroot gave each a worker thread until its timeout."""
    clients = [tls_connection(live_server.port) for _ in range(32)]
    try:
        check_good_requests(
            live_server.port, scaled(3, 50), record_property, "32 silent TLS clients"
        )
    finally:
        for client in clients:
            client.close()


def test_slowloris_clients_do_not_delay_anyone(
    live_server: LiveServer, record_property: Record
) -> None:
    with slowloris(live_server.port, 32):
        deadline = time.monotonic() + scaled(3, 30)
        times = []
        while time.monotonic() < deadline:
            times.append(good_request_seconds(live_server.port))
        record_property("cases", len(times))
        record_property(
            "figure",
            f"32 slowloris clients: worst of {len(times)} good requests {max(times) * 1000:.0f} ms",
        )
        assert max(times) < GOOD_REQUEST_SECONDS, times


@pytest.fixture
def strict_server(web_vault: WebVault) -> Iterator[LiveServer]:
    """The endpoint with short limits, so each cut-off is seen in a test's time."""
    limits = ServerLimits(
        handshake_seconds=1.0,
        head_seconds=1.5,
        request_seconds=2.5,
        body_seconds=2.0,
        idle_seconds=2.0,
        connections_per_address=8,
    )
    with served(web_vault, limits) as server:
        yield server


def test_each_phase_has_a_deadline(strict_server: LiveServer) -> None:
    port = strict_server.port
    (no_hello,) = silent_tcp(port, 1)
    no_request = tls_connection(port)
    cut = closed_by_server(no_hello, within=5)
    assert cut is not None and cut < 2.5, "a socket with no ClientHello is closed at 1 s"
    cut = closed_by_server(no_request, within=5)
    assert cut is not None and cut < 3, "a TLS connection with no request is closed at 1.5 s"
    with slowloris(port, 1, interval=0.1) as (trickler,):
        time.sleep(0.05)
        cut = closed_by_server(trickler, within=6)
        assert cut is not None and cut < 4, "a head trickled forever is cut at 1.5 s"


def test_a_body_trickled_forever_gets_408(strict_server: LiveServer) -> None:
    client = tls_connection(strict_server.port)
    client.sendall(
        b"POST /api/v1/encrypt-value HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()
    answer = b""
    client.settimeout(0.1)
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        # A byte every 0.1 s: never idle, never done, until the server answers.
        while not answer and time.monotonic() - started < 5:
            try:
                answer = client.recv(65536)
                break
            except TimeoutError:
                client.send(b" ")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert time.monotonic() - started < 5


def test_a_keep_alive_connection_idles_out(strict_server: LiveServer) -> None:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", strict_server.port, timeout=10, context=CLIENT_TLS
    )
    connection.request("GET", "/api/v1/status")
    connection.getresponse().read()
    assert connection.sock is not None
    cut = closed_by_server(connection.sock, within=5)
    assert cut is not None and 1.5 < cut < 3.5


def test_one_address_cannot_hold_every_connection(strict_server: LiveServer) -> None:
    port = strict_server.port
    held = [tls_connection(port) for _ in range(8)]
    try:
        (refused,) = silent_tcp(port, 1)
        assert closed_by_server(refused, within=1) is not None, "the ninth is closed at once"
        other = tls_connection(port, source="127.0.0.2")  # another address still gets in
        other.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert other.recv(100).startswith(b"HTTP/1.1 401 ")
        other.close()
    finally:
        for client in held:
            client.close()
    time.sleep(0.2)
    assert good_request_seconds(port) < GOOD_REQUEST_SECONDS, "the count goes down on close"


def test_keep_alive_connections_are_kept_past_sixteen_clients(live_server: LiveServer) -> None:
    """cheroot closed keep-alive connections past ten idle ones: a new handshake each time."""
    connections = [
        http.client.HTTPSConnection("127.0.0.1", live_server.port, timeout=10, context=CLIENT_TLS)
        for _ in range(48)
    ]
    try:
        for connection in connections:
            connection.request("GET", "/api/v1/status")
            connection.getresponse().read()
        first = [connection.sock for connection in connections]  # None: closed by the server
        for connection in connections:
            connection.request("GET", "/api/v1/status")
            response = connection.getresponse()
            response.read()
            assert response.status == 401
        kept = [connection.sock for connection in connections]
        assert None not in kept and kept == first, "a keep-alive connection was closed"
    finally:
        for connection in connections:
            connection.close()


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"X-Big: " + b"a" * 20_000 + b"\r\n", 431),  # one long header
        (b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(200)), 431),  # many
        (b"Content-Length: 10000000\r\n", 413),  # a body too large, refused before it is sent
        (b"Content-Length: " + b"9" * 5000 + b"\r\n", 400),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),  # smuggling shape
        (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
    ],
)
def test_oversized_or_ambiguous_heads_get_one_clear_answer(
    live_server: LiveServer, head: bytes, status: int
) -> None:
    client = tls_connection(live_server.port)
    with contextlib.suppress(OSError):
        client.sendall(b"POST /api/v1/encrypt-value HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n")
    answer = client.recv(65536)
    client.close()
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:120]
    assert b'"error"' in answer and b"Traceback" not in answer
    assert good_request_seconds(live_server.port) < GOOD_REQUEST_SECONDS


def test_a_chunked_body_over_the_limit_gets_413(live_server: LiveServer) -> None:
    client = tls_connection(live_server.port)
    client.sendall(
        b"POST /api/v1/encrypt-value HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (8192, b"z" * 8192)
    with contextlib.suppress(OSError):
        for _ in range(20):  # 160 KiB against a 64 KiB limit
            client.sendall(chunk)
    answer = client.recv(65536)
    client.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:120]


# -- the served process: a 64 MiB head does not grow its memory ------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send_huge_head(port: int, mib: int) -> bytes:
    client = tls_connection(port)
    answer = b""
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Flood: ")
        block = b"f" * 65536
        for _ in range(mib * 16):
            client.sendall(block)
    except OSError:
        pass  # the server answered and closed: the point
    with contextlib.suppress(OSError):
        client.settimeout(2)
        answer = client.recv(200)
    client.close()
    return answer


def test_64_mib_heads_are_refused_without_growing_the_server(
    served_process: tuple[subprocess.Popen[str], int], record_property: Record
) -> None:
    process, port = served_process
    children = children_of(process.pid)  # the worker and the housekeeper

    def rss() -> int:
        return sum(rss_kib(pid) for pid in children)

    good_request_seconds(port)  # warm: the app's first request allocates its caches
    before = rss()
    floods = [
        threading.Thread(target=send_huge_head, args=(port, 64), daemon=True) for _ in range(4)
    ]
    for flood in floods:
        flood.start()
    for flood in floods:
        flood.join(timeout=60)
    assert good_request_seconds(port) < GOOD_REQUEST_SECONDS
    grown_mib = (rss() - before) / 1024
    record_property("figure", f"4 clients x 64 MiB heads: server RSS grew {grown_mib:.1f} MiB")
    assert grown_mib < 10, f"the worker grew by {grown_mib:.1f} MiB"
    assert send_huge_head(port, 1).startswith(b"HTTP/1.1 431 ")


@pytest.fixture
def served_process(web_vault: WebVault) -> Iterator[tuple[subprocess.Popen[str], int]]:
    with gwvault_serve(web_vault.data_dir) as served:
        yield served


def test_a_client_waiting_for_100_continue_is_told_to_go_on(live_server: LiveServer) -> None:
    client = tls_connection(live_server.port)
    client.sendall(
        b"POST /api/v1/encrypt-value HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer not-a-token\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    assert client.recv(100).startswith(b"HTTP/1.1 100 ")
    client.sendall(b"{}")
    assert client.recv(100).startswith(b"HTTP/1.1 401 ")
    client.close()

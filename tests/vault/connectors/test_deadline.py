"""One overall deadline per connection test (issue 15): a host that accepts and then
stays silent, or trickles a byte at a time so no single read ever times out, frees
the test's thread when the deadline passes."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent_keys.secret import Secret
from tests.vault.connectors.results import LOOPBACK_ALLOWED, assert_presentable, login
from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import DestinationPolicy, DestinationRefused, resolve_destination
from vault.format.data_source import DataSource, DataSourceType

DEADLINE = 1.5
# libpq waits at least 2 s per connection attempt, whatever the deadline says.
SLACK = 2.5
# What each trickling server sends first: a MySQL packet header announcing a
# 64 KiB greeting (its body then comes a byte at a time), or the start of an
# HTTP status line or a PostgreSQL message that never ends.
OPENINGS: dict[DataSourceType, bytes] = {
    "mysql": b"\xff\xff\x00\x00", "http": b"HTTP/1.1 ", "postgresql": b"E\x00\x00\x70\x00",
}  # fmt: skip


@contextlib.contextmanager
def trickling_server(opening: bytes) -> Iterator[int]:
    """A real listener that answers every connection with ``opening`` and then one
    byte every 0.2 s, for as long as the client stays."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def trickle(client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            client.sendall(opening)
            while not stop.wait(0.2):
                client.sendall(b"a")

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                client, _ = listener.accept()
                threading.Thread(target=trickle, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


def _timed(run: object) -> tuple[ConnectionTestResult, float]:
    """Run a test on its own thread, as a web worker would; fail rather than hang."""
    found: list[ConnectionTestResult] = []
    start = time.monotonic()
    worker = threading.Thread(target=lambda: found.append(run()), daemon=True)  # type: ignore[operator]
    worker.start()
    worker.join(timeout=DEADLINE + SLACK + 5)
    assert not worker.is_alive(), "the connection test held its thread past the deadline"
    return found[0], time.monotonic() - start


@pytest.mark.parametrize("kind", sorted(OPENINGS))
def test_a_trickling_server_is_given_up_on_at_the_deadline(
    kind: DataSourceType, canary: str
) -> None:
    with trickling_server(OPENINGS[kind]) as port:
        if kind == "http":
            source = DataSource("http", f"http://127.0.0.1:{port}/", tls="disable")
            anonymous = ConnectionCredential("anonymous", None, None)
            policy = LOOPBACK_ALLOWED
            result, took = _timed(
                lambda: dispatch.test_connection(source, anonymous, DEADLINE, policy=policy)
            )
        else:
            server = f"127.0.0.1:{port}"
            result, took = _timed(lambda: login(kind, server, "alice", canary, timeout=DEADLINE))
    assert result.reason == "timeout", result.detail
    assert took < DEADLINE + SLACK, took
    assert "timed out" in result.detail
    assert_presentable(result, canary)


def test_a_silent_server_frees_the_thread_at_the_deadline(silent_tcp_port: int) -> None:
    source = DataSource("mysql", f"127.0.0.1:{silent_tcp_port}", tls="disable")
    login_ = ConnectionCredential("basic", "alice", Secret.from_text("pw-of-alice"))
    policy = DestinationPolicy().for_admin()
    result, took = _timed(lambda: dispatch.test_connection(source, login_, DEADLINE, policy=policy))
    assert result.reason == "timeout" and took < DEADLINE + 1.0, (result, took)


def test_the_guard_ends_a_blocked_read_when_the_deadline_passes() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        deadline = Deadline(0.3)
        start = time.monotonic()
        with deadline.guarding(ours):
            assert ours.recv(1) == b""  # the far end never wrote: the shutdown ended it
        assert 0.25 < time.monotonic() - start < 2.0
    # A block that ends in time leaves the socket alone.
    ours, theirs = socket.socketpair()
    with ours, theirs, Deadline(5.0).guarding(ours):
        theirs.sendall(b"x")
        assert ours.recv(1) == b"x"


def test_a_step_that_overruns_the_deadline_is_abandoned() -> None:
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        Deadline(0.3).run(lambda: release.wait(10))
    assert time.monotonic() - start < 2.0
    release.set()
    assert Deadline(1.0).run(lambda: 42) == 42


def test_stuck_lookups_are_bounded_and_failures_reach_the_caller() -> None:
    release, started = threading.Event(), []

    def stuck() -> bool:
        started.append(1)
        return release.wait(10)

    try:
        for _ in range(4):  # every lookup thread stuck, as behind a silent resolver
            with pytest.raises(TimeoutError):
                Deadline(0.2).run(stuck)
        with pytest.raises(TimeoutError):
            Deadline(0.3).run(stuck)  # waits for a free thread, never starts
        assert len(started) == 4
    finally:
        release.set()
    time.sleep(0.2)

    def refused() -> None:
        raise OSError("name or service not known")

    with pytest.raises(OSError, match="not known"):
        Deadline(1.0).run(refused)


def test_a_lookup_after_the_deadline_is_a_timeout_result() -> None:
    spent = Deadline(0.0)
    with pytest.raises(DestinationRefused) as refused:
        resolve_destination("localhost", 80, DestinationPolicy().for_admin(), spent)
    assert refused.value.result.reason == "timeout"
    assert "timed out" in refused.value.result.detail

"""The syslog-over-TLS audit sink against the machine's real rsyslogd (tests.rsyslog_fixtures).

Records must arrive whole and in order; a server that is gone, impersonated,
not speaking TLS or silent must make ``send`` raise ``AuditSinkUnavailableError``
at once (that is what lets a ``block`` sink fail the change closed), and a
server back again must be reconnected to.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agent_keys.errors import InvalidInputError
from tests.rsyslog_fixtures import RsyslogServer, process_is_gone, running_rsyslogd
from tests.service_fixtures import server_tls_context
from tests.tls_certificates import CertificateAuthority, issue_server_certificate
from tests.vault.audit.sinks.test_syslog_message import SYSLOG_MSG
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.syslog_tls import MAX_MESSAGE_OCTETS, SyslogTlsTransport, rfc5424_message

HEX = "0123456789abcdef" * 4


def entries(gateway_id: str, seqs: range, details: str = "{}") -> list[dict[str, Any]]:
    return [
        {"type": "entry", "gateway_id": gateway_id, "seq": seq, "at": "2026-12-06T13:00:00+00:00",
         "actor": "admin", "channel": "cli", "action": "credential.put", "target": "sales",
         "outcome": "ok", "request_id": f"r-{seq}", "details": details, "prev": HEX, "hash": HEX}
        for seq in seqs
    ]  # fmt: skip


@pytest.fixture(scope="module")
def rsyslogd(
    tmp_path_factory: pytest.TempPathFactory, trusted_ca: CertificateAuthority
) -> Iterator[RsyslogServer]:
    """One rsyslogd for the tests that leave it running (each uses its own gateway id)."""
    directory = tmp_path_factory.mktemp("rsyslogd")
    with running_rsyslogd(directory, trusted_ca.pem, issue_server_certificate(trusted_ca)) as s:
        yield s


@pytest.fixture
def own_rsyslogd(tmp_path: Path, trusted_ca: CertificateAuthority) -> Iterator[RsyslogServer]:
    """An rsyslogd of the test's own, to stop and restart."""
    with running_rsyslogd(tmp_path, trusted_ca.pem, issue_server_certificate(trusted_ca)) as s:
        yield s


@pytest.fixture
def gateway_id() -> str:
    return str(uuid.uuid4())


def transport_to(server: RsyslogServer, **options: Any) -> SyslogTlsTransport:
    return SyslogTlsTransport("127.0.0.1", server.port, server.ca_pem, **options)


def test_records_arrive_whole_and_in_order(rsyslogd: RsyslogServer, gateway_id: str) -> None:
    transport = transport_to(rsyslogd, hostname="gw-test-1")
    sent = entries(gateway_id, range(1, 6))
    transport.send(sent[:2])
    transport.send(sent[2:])  # the same kept connection
    transport.close()
    assert rsyslogd.wait_for_records(5, gateway_id) == sent
    assert rsyslogd.log_path.stat().st_mode & 0o007 == 0  # the README's fileCreateMode


def test_rsyslog_parses_every_field_as_sent(rsyslogd: RsyslogServer, gateway_id: str) -> None:
    # RSYSLOG_SyslogProtocol23Format writes each field back from rsyslog's own
    # RFC 5424 parse (PRI, timestamp, host, app, procid, msgid, SD, MSG): the
    # line it wrote equals the message only if every field was read as meant.
    checkpoint = {"type": "checkpoint", "gateway_id": gateway_id, "seq": 100, "head": HEX,
                  "at": "2026-12-06T13:00:00+00:00", "reason": "interval"}  # fmt: skip
    escaped = gateway_id + ' "quoted" \\ ]'  # PARAM-VALUE escapes (RFC 5424 6.3.3)
    sent = [*entries(gateway_id, range(1, 2)), checkpoint, *entries(escaped, range(1, 2))]
    with_close(transport_to(rsyslogd, hostname="gw-parse"), sent)
    rsyslogd.wait_for_records(2, gateway_id)
    rsyslogd.wait_for_records(1, escaped)
    written = [line for line in rsyslogd.lines() if gateway_id.encode() in line]
    procid = str(os.getpid())
    assert written == [rfc5424_message(r, hostname="gw-parse", procid=procid) for r in sent]
    assert all(SYSLOG_MSG.match(line.decode()) for line in written)


def test_a_record_at_the_size_limit_arrives_uncut(rsyslogd: RsyslogServer, gateway_id: str) -> None:
    # rsyslogd's maxMessageSize="68k" (the README's) takes the largest message.
    transport = transport_to(rsyslogd, hostname="gw-long")
    record = entries(gateway_id, range(1, 2))[0]
    size = len(rfc5424_message(record, hostname="gw-long", procid=str(os.getpid())))
    longest = record | {"details": "x" * (MAX_MESSAGE_OCTETS - size + len(record["details"]))}
    with_close(transport, [longest])
    assert rsyslogd.wait_for_records(1, gateway_id) == [longest]
    assert len(rsyslogd.lines()[-1]) == MAX_MESSAGE_OCTETS


def test_a_longer_record_is_refused_before_anything_is_sent(
    rsyslogd: RsyslogServer, gateway_id: str
) -> None:
    too_long = entries(gateway_id, range(2, 3), details="x" * MAX_MESSAGE_OCTETS)
    with pytest.raises(AuditSinkUnavailableError, match="octets is over"):
        with_close(transport_to(rsyslogd), [*entries(gateway_id, range(1, 2)), *too_long])
    with_close(transport_to(rsyslogd), entries(gateway_id, range(3, 4)))
    assert [r["seq"] for r in rsyslogd.wait_for_records(1, gateway_id)] == [3]


def test_a_stopped_server_fails_the_first_send_after_the_stop(
    own_rsyslogd: RsyslogServer, gateway_id: str
) -> None:
    transport = transport_to(own_rsyslogd)
    transport.send(entries(gateway_id, range(1, 2)))
    assert own_rsyslogd.wait_for_records(1, gateway_id)
    pid = own_rsyslogd.process.pid  # type: ignore[union-attr]
    own_rsyslogd.stop()
    assert process_is_gone(pid)
    # The kept connection is closed by the server; the very next send must not
    # write into it and report success (a block sink would then let the change
    # commit with its entry lost).
    with pytest.raises(AuditSinkUnavailableError, match=rf"127\.0\.0\.1:{own_rsyslogd.port}"):
        transport.send(entries(gateway_id, range(2, 3)))
    with pytest.raises(AuditSinkUnavailableError, match="connection refused"):
        transport.send(entries(gateway_id, range(2, 3)))


def test_a_restarted_server_is_reconnected_to(own_rsyslogd: RsyslogServer, gateway_id: str) -> None:
    transport = transport_to(own_rsyslogd)
    transport.send(entries(gateway_id, range(1, 2)))
    own_rsyslogd.wait_for_records(1, gateway_id)
    own_rsyslogd.restart()
    transport.send(entries(gateway_id, range(2, 4)))
    transport.close()
    assert [r["seq"] for r in own_rsyslogd.wait_for_records(3, gateway_id)] == [1, 2, 3]


def test_a_forked_child_makes_its_own_connection(rsyslogd: RsyslogServer, gateway_id: str) -> None:
    # Had the child written on the parent's TLS connection, the two TLS
    # sequence numbers would part and the parent's next record would be refused
    # by the server (bad record MAC) and lost: all three must arrive.
    transport = transport_to(rsyslogd)
    transport.send(entries(gateway_id, range(1, 2)))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            transport.send(entries(gateway_id, range(2, 3)))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    rsyslogd.wait_for_records(2, gateway_id)
    transport.send(entries(gateway_id, range(3, 4)))
    transport.close()
    assert sorted(r["seq"] for r in rsyslogd.wait_for_records(3, gateway_id)) == [1, 2, 3]


def test_sends_of_many_threads_never_interleave(rsyslogd: RsyslogServer, gateway_id: str) -> None:
    # One transport, four threads: a frame written into the middle of
    # another would reach the file as a broken line (the reader refuses it).
    transport = transport_to(rsyslogd)
    batches = [entries(gateway_id, range(start, start + 5)) for start in range(1, 101, 5)]

    def send_every_fourth(first: int) -> None:
        for batch in batches[first::4]:
            transport.send(batch)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send_every_fourth, range(4)))  # re-raises a thread's failure
    transport.close()
    arrived = rsyslogd.wait_for_records(100, gateway_id)
    assert sorted(r["seq"] for r in arrived) == list(range(1, 101))
    for batch in batches:  # each send's records together and in order
        at = arrived.index(batch[0])
        assert arrived[at : at + 5] == batch


@pytest.mark.parametrize(
    "ca_pem",
    ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
)
def test_a_ca_that_does_not_load_is_refused_when_the_transport_is_made(ca_pem: str) -> None:
    with pytest.raises(InvalidInputError, match="CA"):
        SyslogTlsTransport("127.0.0.1", 6514, ca_pem)


@pytest.mark.parametrize(
    ("impersonation", "refusal"),
    [
        ("another_ca", "unable to get local issuer certificate"),
        ("expired", "certificate has expired"),
        ("other_name", "mismatch, certificate is not valid"),
    ],
)
def test_a_server_that_is_not_the_configured_one_is_refused(
    impersonation: str,
    refusal: str,
    tmp_path: Path,
    trusted_ca: CertificateAuthority,
    untrusted_ca: CertificateAuthority,
) -> None:
    certificate = {
        "another_ca": lambda: issue_server_certificate(untrusted_ca),
        "expired": lambda: issue_server_certificate(trusted_ca, expired=True),
        "other_name": lambda: issue_server_certificate(
            trusted_ca, names=("syslog.elsewhere.example",), addresses=()
        ),
    }[impersonation]()
    with running_rsyslogd(tmp_path, trusted_ca.pem, certificate) as impostor:
        transport = transport_to(impostor)
        with pytest.raises(AuditSinkUnavailableError, match=refusal):
            transport.send(entries(str(uuid.uuid4()), range(1, 2)))
    assert impostor.records() == []


def test_the_server_name_is_checked_not_the_address(
    rsyslogd: RsyslogServer, gateway_id: str
) -> None:
    # The certificate names localhost and 127.0.0.1: asked for another name,
    # the same server is refused; asked for its name, it is taken.
    with pytest.raises(AuditSinkUnavailableError, match="Hostname mismatch"):
        transport_to(rsyslogd, server_name="syslog.example").send(entries(gateway_id, range(1, 2)))
    with_close(transport_to(rsyslogd, server_name="localhost"), entries(gateway_id, range(2, 3)))
    assert [r["seq"] for r in rsyslogd.wait_for_records(1, gateway_id)] == [2]


def test_a_host_name_is_resolved_and_each_address_tried(
    rsyslogd: RsyslogServer, gateway_id: str
) -> None:
    # localhost may resolve to ::1 first, where nothing listens: 127.0.0.1 is next.
    transport = SyslogTlsTransport("localhost", rsyslogd.port, rsyslogd.ca_pem)
    with_close(transport, entries(gateway_id, range(1, 2)))
    assert [r["seq"] for r in rsyslogd.wait_for_records(1, gateway_id)] == [1]


def test_an_ipv6_address_is_named_in_brackets(closed_tcp_port: int, trusted_ca_pem: str) -> None:
    transport = SyslogTlsTransport("::1", closed_tcp_port, trusted_ca_pem)
    with pytest.raises(AuditSinkUnavailableError, match=rf"\[::1\]:{closed_tcp_port} "):
        transport.send(entries(str(uuid.uuid4()), range(1, 2)))


def test_a_plain_tcp_listener_is_refused(trusted_ca_pem: str, gateway_id: str) -> None:
    # A listener that answers the TLS hello with plain text (as a syslog
    # server without TLS would, or anything else on the port).
    with socket.create_server(("127.0.0.1", 0)) as listener:
        transport = SyslogTlsTransport("127.0.0.1", listener.getsockname()[1], trusted_ca_pem)
        with (
            one_peer(listener, lambda peer: peer.sendall(b"220 not tls\r\n")),
            pytest.raises(AuditSinkUnavailableError, match="TLS failed"),
        ):
            transport.send(entries(gateway_id, range(1, 2)))


def test_a_silent_server_hits_the_timeout(silent_tcp_port: int, trusted_ca_pem: str) -> None:
    transport = SyslogTlsTransport("127.0.0.1", silent_tcp_port, trusted_ca_pem, timeout=0.3)
    with pytest.raises(AuditSinkUnavailableError, match=r"no answer within 0\.3 s"):
        transport.send(entries(str(uuid.uuid4()), range(1, 2)))


def test_a_server_that_stops_reading_mid_send_hits_the_timeout(
    trusted_ca: CertificateAuthority, trusted_ca_pem: str
) -> None:
    # The handshake succeeds, then the server takes nothing: the deadline covers
    # the writes too, not only connect and handshake.
    released = threading.Event()

    def stall(peer: socket.socket) -> None:
        with server_tls_context(trusted_ca).wrap_socket(peer, server_side=True):
            released.wait(10)

    with _small_listener() as listener, one_peer(listener, stall):
        port = listener.getsockname()[1]
        transport = SyslogTlsTransport("127.0.0.1", port, trusted_ca_pem, timeout=0.5)
        try:
            with pytest.raises(AuditSinkUnavailableError, match=r"no answer within 0\.5 s"):
                transport.send(_more_than_buffers_hold())
        finally:
            released.set()


def test_a_server_that_closes_mid_send_fails_the_send(
    trusted_ca: CertificateAuthority, trusted_ca_pem: str
) -> None:
    def close_after_handshake(peer: socket.socket) -> None:
        server_tls_context(trusted_ca).wrap_socket(peer, server_side=True).close()

    with _small_listener() as listener, one_peer(listener, close_after_handshake):
        port = listener.getsockname()[1]
        transport = SyslogTlsTransport("127.0.0.1", port, trusted_ca_pem)
        with pytest.raises(AuditSinkUnavailableError, match=f"127.0.0.1:{port} did not take"):
            transport.send(_more_than_buffers_hold())


def _small_listener() -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # taken by what it accepts
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


def _more_than_buffers_hold() -> list[dict[str, Any]]:
    """About 13 MB of records: more than loopback's socket buffers take unread."""
    return entries(str(uuid.uuid4()), range(1, 201), details="x" * 65_000)


def test_a_refused_connection_names_the_address_not_the_record(
    closed_tcp_port: int, trusted_ca_pem: str
) -> None:
    transport = SyslogTlsTransport("127.0.0.1", closed_tcp_port, trusted_ca_pem)
    with pytest.raises(AuditSinkUnavailableError) as raised:
        transport.send(entries("gw-canary-gateway", range(1, 2), details="canary-details"))
    message = str(raised.value)
    assert f"127.0.0.1:{closed_tcp_port}" in message and "connection refused" in message
    assert "canary" not in message


def with_close(transport: SyslogTlsTransport, records: list[dict[str, Any]]) -> None:
    try:
        transport.send(records)
    finally:
        transport.close()


@contextlib.contextmanager
def one_peer(listener: socket.socket, act: Callable[[socket.socket], object]) -> Iterator[None]:
    """Accept one connection on ``listener`` in a thread and ``act`` on it."""

    def serve() -> None:
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(5)
                act(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=10)

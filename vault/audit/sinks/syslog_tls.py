"""The syslog-over-TLS audit sink transport (RFC 5425 carrying RFC 5424 messages).

Each record goes as ``MSG-LEN SP SYSLOG-MSG`` (octet counting, RFC 5425 4.3)
over one kept TLS connection: TLS 1.2 or later, the server's certificate
verified against the sink's own CA only (never the system store, so a
certificate any public CA issued for the name is no key to the trail) and its
name checked.

Syslog over TLS has no acknowledgement: a write succeeds once the bytes are in
the kernel's buffer.  Before each send the connection is checked for a close
the server already signalled (a stopped or restarted rsyslogd sends one), and
a fresh connection is made; so the first send after a server went away fails
instead of vanishing into a dead socket.  What no check can see is a peer
that disappears without a word after a write (a cut cable): the records of
that one send may be lost, and the next send fails.

* Bounded: one deadline, ``timeout`` seconds from the start of ``send``,
  covers connect, handshake and every write.  (A host name is resolved by the
  system resolver first, with its own timeouts; give an address to avoid it.)
* Fork-safe: the server forks workers; a child never writes on its parent's
  TLS connection (two writers of one TLS stream corrupt it for both), it
  makes its own.
* Thread-safe: one lock per transport; sends of two threads never interleave.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import InvalidInputError
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.syslog_message import gwvault_records, rfc5424_message
from vault.forks import reset_in_child

__all__ = [
    "MAX_MESSAGE_OCTETS",
    "SyslogTlsTransport",
    "gwvault_records",
    "rfc5424_message",
]

# The largest message sent: rsyslog's maxMessageSize must be at least this
# (README: 68k); a receiver that cuts a message would break the record in it.
# Any record that fits an export line (64 KiB) fits, with its syslog header,
# and a line of it fits ``audit verify --against``'s line bound (70,000).
MAX_MESSAGE_OCTETS = 68 * 1024
_CLOSE_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class _Connection:
    tls: ssl.SSLSocket
    pid: int  # the process that made it: no other may write on it


class SyslogTlsTransport:
    """One syslog server (``host``:``port``) whose TLS certificate ``ca_pem`` issued."""

    def __init__(
        self,
        host: str,
        port: int,
        ca_pem: str,
        *,
        server_name: str | None = None,
        timeout: float = 5.0,
        hostname: str | None = None,
    ) -> None:
        """``server_name`` is the name the certificate must carry (default ``host``);
        ``hostname`` the HOSTNAME field of the messages (default this machine's).

        Raises ``InvalidInputError`` when ``ca_pem`` holds no usable certificate.
        """
        self.host, self.port = host, port
        self._server_name = server_name or host
        self._timeout = timeout
        self._hostname = hostname or socket.gethostname()
        self._context = _client_context(ca_pem)
        self._connection: _Connection | None = None
        self._lock = threading.Lock()
        reset_in_child(self, SyslogTlsTransport._after_fork)

    def __repr__(self) -> str:
        return f"SyslogTlsTransport({self.host}:{self.port})"

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write every record, in order, or raise ``AuditSinkUnavailableError``
        (refused, timed out, TLS refused, closed mid-way, or a record that makes
        no message, when nothing is written)."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        where = f"audit sink syslog {host}:{self.port}"
        procid = str(os.getpid())
        try:
            frames = [
                _framed(rfc5424_message(r, hostname=self._hostname, procid=procid)) for r in records
            ]
        except InvalidInputError as e:
            raise AuditSinkUnavailableError(f"{where} cannot be sent a record: {e}") from e
        if not frames:
            return
        deadline = time.monotonic() + self._timeout
        with self._lock:
            try:
                tls = self._usable_connection(deadline)
                _write_all(tls, b"".join(frames), deadline)
            except OSError as e:  # TimeoutError and ssl.SSLError are OSErrors
                self._forget()
                raise AuditSinkUnavailableError(
                    f"{where} did not take the entries: {_cause(e, self._timeout)}"
                ) from e

    def close(self) -> None:
        """Close this process's connection (the server sees a TLS close)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None and connection.pid == os.getpid():
            _close_politely(connection.tls)

    def _usable_connection(self, deadline: float) -> ssl.SSLSocket:
        connection = self._connection
        if connection is not None and connection.pid != os.getpid():
            self._forget()  # a parent's, inherited before a fork
        elif connection is not None and _peer_has_closed(connection.tls):
            self._forget()
        if self._connection is not None:
            return self._connection.tls
        tls = _connect(self.host, self.port, self._context, self._server_name, deadline)
        self._connection = _Connection(tls, os.getpid())
        return tls

    def _forget(self) -> None:
        # Closing the descriptor without a TLS close is right in a child too:
        # it drops only this process's reference to the socket, and sends
        # nothing on a stream whose TLS state belongs to the parent.
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.tls.close()

    def _after_fork(self) -> None:
        # In the child, before any of its threads runs: a parent thread may
        # have held the lock at the fork, and would never release it here.
        self._lock = threading.Lock()


def _client_context(ca_pem: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks names
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if "-----BEGIN CERTIFICATE-----" not in ca_pem:
        raise InvalidInputError("the syslog sink's CA is not a PEM certificate")
    try:
        context.load_verify_locations(cadata=ca_pem)  # only this CA: no system store
    except (ssl.SSLError, ValueError) as e:
        raise InvalidInputError("the syslog sink's CA certificate does not load") from e
    return context


def _connect(
    host: str, port: int, context: ssl.SSLContext, server_name: str, deadline: float
) -> ssl.SSLSocket:
    plain = _tcp_connection(host, port, deadline)
    try:
        plain.settimeout(_remaining(deadline))
        tls = context.wrap_socket(plain, server_hostname=server_name)
    except BaseException:
        plain.close()
        raise
    return tls


def _tcp_connection(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to the first address of ``host`` that answers before the deadline."""
    failure: OSError = ConnectionError("no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        plain = socket.socket(family, kind, proto)
        try:
            plain.settimeout(_remaining(deadline))
            plain.connect(address)
        except OSError as e:
            plain.close()
            failure = e
            continue
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return plain
    raise failure


def _framed(message: bytes) -> bytes:
    """RFC 5425 4.3.1 octet counting: ``MSG-LEN SP SYSLOG-MSG``."""
    if len(message) > MAX_MESSAGE_OCTETS:
        # Raised before anything is written, like any record that makes no message.
        raise InvalidInputError(
            f"an audit sink message of {len(message)} octets is over {MAX_MESSAGE_OCTETS}"
        )
    return str(len(message)).encode("ascii") + b" " + message


def _write_all(tls: ssl.SSLSocket, data: bytes, deadline: float) -> None:
    # SSLSocket.sendall restarts its timeout for each chunk; the deadline does not.
    view = memoryview(data)
    while view:
        tls.settimeout(_remaining(deadline))
        view = view[tls.send(view[: 64 * 1024]) :]


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    return left


def _peer_has_closed(tls: ssl.SSLSocket) -> bool:
    """Whether the server closed (or broke) the connection since the last send.

    A syslog server never sends application data, so anything readable is a
    close, an error, or TLS records without data (TLS 1.3 session tickets).
    """
    poller = select.poll()
    poller.register(tls, select.POLLIN)
    if not poller.poll(0) and not tls.pending():
        return False
    tls.setblocking(False)
    try:
        tls.recv(1)  # b"" at a close; any data is a protocol violation
    except ssl.SSLWantReadError:
        return False  # only records without data were read
    except OSError:
        return True
    return True


def _close_politely(tls: ssl.SSLSocket) -> None:
    # A TLS close_notify tells the server the stream ended on purpose (rsyslog
    # logs a close without one as an error); bounded, and best effort.
    try:
        tls.settimeout(_CLOSE_WAIT_SECONDS)
        tls.unwrap().close()
    except (OSError, ValueError):
        tls.close()


def _cause(error: OSError, timeout: float) -> str:
    """What went wrong, from the socket or TLS layer (never a record's contents)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"its TLS certificate is refused ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed ({error.reason or 'handshake'})"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    return error.strerror or type(error).__name__

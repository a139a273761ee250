"""SQL Server login test (and the agent's connection) with python-tds, pure Python.

A SQL Server login (TDS LOGIN7) carries the password itself, merely
obfuscated (a nibble swap and an XOR anyone can undo): there is no
challenge-response for SQL logins.  So the password goes only to a server
whose certificate was verified (TLS mode verify-full or verify-ca,
``dispatch`` refuses the others for this type; ``open_connection`` checks
again before a byte is sent), and the whole connection is encrypted: the
client asks for ENCRYPT_ON, and python-tds refuses a server that answers that
it encrypts the login only, or nothing.

TLS is Python's ``ssl`` (``tls_policy.client_context``: the credential's CA
or the system store, host names checked by OpenSSL), not python-tds's own:
that needs pyOpenSSL, speaks TLS 1.2 only and matches host names with its own
loose code.  In TDS 7 the handshake travels inside PRELOGIN packets, so it
runs over memory BIOs (``_establish_channel``), then the records flow on the
socket.  TDS 8 ("strict", TLS before any TDS) is not in python-tds.

The connection goes to the checked address only: python-tds's ``connect``
would follow a server's redirect (an Azure gateway's routing answer) to a host
nobody checked, and retry on its own clock, so the login is driven here from
python-tds's parts, and a redirect is refused.  Windows (NTLM) logins
(``DOMAIN\\user``) are not supported: python-tds needs another package for
them (pyspnego, or the deprecated ntlm-auth) and no server here could test it.
"""

from __future__ import annotations

import os
import socket
import ssl
import uuid
from typing import Any

import pytds
import pytds.tls
from pytds import tds_base
from pytds.tds_socket import _TdsSocket

from vault.connectors.connection import ConnectionTestResult, ReasonCode
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import Destination, connect_tcp
from vault.connectors.tls_policy import client_context, sends_password
from vault.format.data_source import TlsMode

_BUFSIZE = 65536
_CODES: dict[int, ReasonCode] = {
    4060: "database_missing",  # cannot open database requested by the login
    18486: "account_locked",  # the account is locked out
    18470: "account_locked",  # the account is disabled
    18487: "password_expired",  # the password has expired
    18488: "password_expired",  # the password must be changed
    18456: "auth_failed",  # login failed
    18452: "auth_failed",  # login from an untrusted domain (Windows auth only)
}


class PolicyRefused(Exception):
    """The connection would break the credential's policy; nothing secret was sent."""


class LoginFailed(Exception):
    """The pre-login, TLS or login failed: the server's words and number, and ``reason``."""

    def __init__(self, reason: ReasonCode, text: str) -> None:
        super().__init__(text)
        self.reason: ReasonCode = reason


def attempt_login(
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    database: str | None,
    username: str,
    password: str,
    deadline: Deadline,
) -> ConnectionTestResult:
    """Connect, run ``SELECT @@VERSION`` and report within ``deadline``; never
    raises for a failed login."""
    try:
        sock = connect_tcp(destination, deadline.left(), deadline)
    except OSError as e:
        return ConnectionTestResult(classify(e), _error_text(e))
    with sock, deadline.guarding(sock):
        try:
            connection = open_connection(
                destination, tls=tls, ca_pem=ca_pem, database=database, username=username,
                password=password, timeout=max(deadline.remaining(), 0.001), connected=sock,
            )  # fmt: skip
        except (PolicyRefused, LoginFailed, OSError) as e:
            return ConnectionTestResult(classify(e), _error_text(e))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128))")
                row = cursor.fetchone()
        except (tds_base.Error, OSError) as e:
            return ConnectionTestResult(classify(e), _error_text(e))
        finally:
            connection.close()
    version = str(row[0]) if row else "?"
    return ConnectionTestResult(
        "ok", f"ok: connected to SQL Server {version} as {username} (TLS, tls {tls})"
    )


def open_connection(
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    database: str | None,
    username: str,
    password: str,
    timeout: float,
    connected: socket.socket | None = None,
) -> pytds.Connection:
    """A connection to the checked ``destination`` under the credential's TLS
    policy, over ``connected`` (a socket to it) or a new one.

    Raises ``PolicyRefused`` (before anything secret is sent), ``LoginFailed``
    or ``OSError`` (the connect); ``classify`` names them.
    """
    if not sends_password(tls):
        raise PolicyRefused(
            f"a SQL Server login sends the password itself; TLS mode {tls} does not verify"
            " the server, so gwvault does not send it (use verify-full or verify-ca)"
        )
    if "\\" in username:
        raise PolicyRefused("Windows (NTLM) logins, DOMAIN\\user, are not supported")
    context = client_context(tls, ca_pem)
    if context is None:  # sends_password: a verifying mode always has one
        raise PolicyRefused(f"TLS mode {tls} has no TLS context")
    # SQL Server negotiates TLS 1.3 only in TDS 8 (strict), which python-tds lacks.
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    sock = connected if connected is not None else connect_tcp(destination, timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    login = _login_record(destination.host, database, username, password, context=context,
                          timeout=timeout)  # fmt: skip
    tds = _TdsSocket(sock=sock, login=login, row_strategy=pytds.tuple_row_strategy,
                     autocommit=True)  # fmt: skip
    try:
        route = tds.login()
    except (tds_base.Error, OSError, ValueError) as e:
        failure = _most_specific(e, tds.main_session.messages)
        tds.close()
        # One line with the number: python-tds's own str() is its args tuple.
        raise LoginFailed(classify(failure), _error_text(failure)) from None
    if route is not None:
        tds.close()
        raise PolicyRefused(
            f"the server redirected the login to {route['server']}:{route['port']}, which"
            " was not checked; give that server instead"
        )
    return pytds.NonMarsConnection(pooling=False, key=None, tds_socket=tds)


def classify(error: BaseException) -> ReasonCode:
    """The reason code of a python-tds or socket error."""
    if isinstance(error, PolicyRefused):
        return "refused_by_policy"
    if isinstance(error, LoginFailed):
        return error.reason
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return "tls_failed"
    if isinstance(error, TimeoutError):
        return "timeout"
    number = getattr(error, "msg_no", 0)
    if isinstance(number, int) and number in _CODES:
        return _CODES[number]
    return "unreachable"


def _login_record(
    host: str,
    database: str | None,
    username: str,
    password: str,
    *,
    context: ssl.SSLContext,
    timeout: float,
) -> Any:
    """What ``pytds.connect`` builds, for one server, encrypted, with our TLS context."""
    login = tds_base._TdsLogin()
    login.client_host_name = socket.gethostname()[:128]
    login.library = "Python TDS Library"
    login.server_name = host  # what TLS verifies: the name given, not the address
    login.user_name = username
    login.password = password
    login.app_name = "gwvault connection test"
    login.database = database or ""
    login.client_lcid = pytds.lcid.LANGID_ENGLISH_US
    login.pid = os.getpid()
    login.client_id = uuid.getnode()
    login.tls_ctx = context  # ours, not pyOpenSSL's: see _establish_channel
    login.validate_host = False  # OpenSSL checks the name (check_hostname), not python-tds
    login.enc_flag = tds_base.PreLoginEnc.ENCRYPT_ON
    login.option_flag2 = tds_base.TDS_ODBC_ON
    login.connect_timeout = timeout
    login.query_timeout = timeout
    login.bytes_to_unicode = True
    return login


def _most_specific(error: Exception, messages: list[Any]) -> Exception:
    """A failed login's most telling message as the driver's exception.

    SQL Server answers a missing database with 4060 *and then* 18456, and
    python-tds raises the last: the number that names the cause comes first.
    """
    numbers = [m["msgno"] for m in messages]
    for number in (4060, 18486, 18470, 18487, 18488):
        if number in numbers:
            text = " ".join(m["message"] for m in messages)
            found = messages[numbers.index(number)]
            specific: Exception = tds_base._create_exception_by_message(found, text)
            return specific
    return error


class _TlsTransport:
    """TLS records over the socket after the handshake (python-tds's transport shape)."""

    def __init__(self, sock: Any, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:  # fmt: skip
        self._sock = sock
        self._tls = tls
        self._in = incoming
        self._out = outgoing

    def gettimeout(self) -> float | None:
        timeout: float | None = self._sock.gettimeout()
        return timeout

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._tls.write(bytes(data))
        self._sock.sendall(self._out.read())

    def recv(self, size: int, flags: int = 0) -> bytes:
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                received = self._sock.recv(_BUFSIZE)
                if not received:
                    return b""
                self._in.write(received)
            except ssl.SSLZeroReturnError:
                return b""

    def recv_into(self, buffer: bytearray | memoryview, size: int = 0, flags: int = 0) -> int:
        data = self.recv(size or len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def shutdown(self, how: int = 0) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._sock.close()


_pytds_establish_channel = pytds.tls.establish_channel


def _establish_channel(session: Any) -> None:
    """python-tds's TLS step, with Python's ``ssl`` when the login carries our context.

    The handshake's records travel in PRELOGIN packets (TDS 7); python-tds
    looks this function up on its ``tls`` module at each login, so it is
    rebound there once, and any other context goes to python-tds's own.
    """
    login = session.conn._login
    context = login.tls_ctx
    if not isinstance(context, ssl.SSLContext):
        _pytds_establish_channel(session)
        return
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=login.server_name)
    writer, reader = session._writer, session._reader
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = outgoing.read()
            if pending:
                writer.begin_packet(tds_base.PacketType.PRELOGIN)
                writer.write(pending)
                writer.flush()
            answer = reader.begin_response()
            if answer.type != tds_base.PacketType.PRELOGIN:
                kind = answer.type
                raise tds_base.Error(f"the server answered TLS with packet type {kind}") from None
            while not reader.stream_finished():
                incoming.write(reader.recv(4096))
    pending = outgoing.read()
    if pending:  # never under TLS 1.2, where the server speaks last
        session.conn.sock.sendall(pending)
    transport = _TlsTransport(session.conn.sock, tls, incoming, outgoing)
    session.conn.sock = transport
    writer._transport = transport
    reader._transport = transport


pytds.tls.establish_channel = _establish_channel


def _error_text(error: BaseException) -> str:
    """python-tds errors carry the server's message; show it with its number."""
    number = getattr(error, "msg_no", 0)
    text = " ".join(str(getattr(error, "text", "") or error).split()) or type(error).__name__
    return f"{text} (error {number})" if number else text

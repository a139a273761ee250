"""A fake SQL Server: the TDS 7.4 pre-login, a real TLS handshake inside PRELOGIN
packets, then a refused login.

No SQL Server runs here, so this is as far as the SQL Server tester can be
driven for real: python-tds sends its real PRELOGIN, Python's ``ssl`` does
the real handshake against a certificate the test chooses, and the login is
answered with the error tokens SQL Server sends (``errors``, e.g. 4060 then
18456), which python-tds parses into its own exceptions.  ``received`` is the
decrypted packets after the handshake: what an impersonator who terminated the
TLS would learn (the LOGIN7 packet, with the password in it).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.service_fixtures import server_tls_context
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.fake_servers import read_exactly, serving_once

PRELOGIN, REPLY, LOGIN7 = 0x12, 0x04, 0x10
ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP = 0x00, 0x01, 0x02
_HEADER = struct.Struct(">BBHHBB")


@dataclass
class FakeSqlServer:
    port: int = 0
    received: list[bytes] = field(default_factory=list)  # decrypted, after the handshake


@contextlib.contextmanager
def fake_sql_server(
    tls_from: CertificateAuthority,
    *,
    encryption: int = ENCRYPT_ON,
    errors: tuple[tuple[int, str], ...] = ((18456, "Login failed for user 'alice'."),),
) -> Iterator[FakeSqlServer]:
    """A one-connection fake on 127.0.0.1 with a certificate from ``tls_from``."""
    context = server_tls_context(tls_from)
    fake = FakeSqlServer()
    with serving_once(lambda client: _serve(client, context, encryption, errors, fake)) as port:
        fake.port = port
        yield fake


def _serve(
    client: socket.socket,
    context: ssl.SSLContext,
    encryption: int,
    errors: tuple[tuple[int, str], ...],
    fake: FakeSqlServer,
) -> None:
    _read_message(client)  # the client's PRELOGIN
    _send(client, REPLY, _prelogin_answer(encryption))
    if encryption == ENCRYPT_NOT_SUP:
        return
    tls, incoming, outgoing = _handshake(client, context)
    while True:
        data = client.recv(65536)
        if not data:
            return
        incoming.write(data)
        with contextlib.suppress(ssl.SSLWantReadError):
            packet = tls.read(65536)
            fake.received.append(packet)
            if packet[0] == LOGIN7:
                tls.write(_packet(REPLY, _error_tokens(errors)))
                client.sendall(outgoing.read())


def _handshake(
    client: socket.socket, context: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """The server's side of the TDS 7 handshake: TLS records in PRELOGIN packets."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        incoming.write(_read_message(client))
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            _send(client, PRELOGIN, outgoing.read())
            continue
        _send(client, PRELOGIN, outgoing.read())
        return tls, incoming, outgoing


def _prelogin_answer(encryption: int) -> bytes:
    version = struct.pack(">LH", 0x10000FA0, 0)  # 16.0.4000: SQL Server 2022
    options = [(0x00, version), (0x01, bytes([encryption]))]
    offset = 5 * len(options) + 1
    table, values = b"", b""
    for token, value in options:
        table += struct.pack(">BHH", token, offset + len(values), len(value))
        values += value
    return table + b"\xff" + values


def _error_tokens(errors: tuple[tuple[int, str], ...]) -> bytes:
    body = b""
    for number, text in errors:
        message = struct.pack("<H", len(text)) + text.encode("utf-16-le")
        server = b"\x04" + "fake".encode("utf-16-le")
        rest = struct.pack("<iBB", number, 1, 14) + message + server + b"\x00" + b"\0\0\0\0"
        body += b"\xaa" + struct.pack("<H", len(rest)) + rest
    return body + b"\xfd" + struct.pack("<HHQ", 0x0002, 0, 0)  # DONE, with an error


def _packet(kind: int, payload: bytes) -> bytes:
    return _HEADER.pack(kind, 0x01, _HEADER.size + len(payload), 0, 1, 0) + payload


def _send(client: socket.socket, kind: int, payload: bytes) -> None:
    client.sendall(_packet(kind, payload))


def _read_message(client: socket.socket) -> bytes:
    """The payload of one message: packets up to the one marked end-of-message."""
    payload = b""
    while True:
        _kind, status, length, *_ = _HEADER.unpack(read_exactly(client, _HEADER.size))
        payload += read_exactly(client, length - _HEADER.size)
        if status & 0x01:
            return payload

"""A fake MySQL server that asks for the password itself, as an impersonator would.

It greets with caching_sha2_password or sha256_password, optionally offers TLS
(with a certificate the test chooses), and then asks for full authentication:
over TLS the client answers with the password in clear, without TLS it asks
for the server's RSA key and encrypts the password to it.  The fake terminates
TLS and holds the RSA key, so ``received`` is what an impersonator learns: the
plaintext of everything the client sent after the greeting.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.service_fixtures import server_tls_context
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.fake_servers import read_exactly, serving_once

SCRAMBLE = b"12345678abcdefghijkl"  # 20 bytes, as MySQL sends them: 8, then 12
_SSL = 0x800
# CLIENT_LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
_CAPABILITIES = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000
_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PEM = _RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


@dataclass
class FakeMysql:
    port: int = 0
    received: list[bytes] = field(default_factory=list)
    tls_used: bool = False


@contextlib.contextmanager
def full_auth_server(plugin: str, tls_from: CertificateAuthority | None) -> Iterator[FakeMysql]:
    """A one-connection fake on 127.0.0.1; TLS (a certificate from ``tls_from``) if given."""
    context = server_tls_context(tls_from) if tls_from is not None else None
    fake = FakeMysql()
    with serving_once(lambda client: _serve(client, plugin, context, fake)) as port:
        fake.port = port
        yield fake


def _serve(
    client: socket.socket, plugin: str, context: ssl.SSLContext | None, fake: FakeMysql
) -> None:
    capabilities = _CAPABILITIES | (_SSL if context else 0)
    _send(client, 0, _greeting(plugin, capabilities))
    seq, payload = _read(client)
    if context is not None and len(payload) == 32 and int.from_bytes(payload[:4], "little") & _SSL:
        client = context.wrap_socket(client, server_side=True)
        fake.tls_used = True
        seq, payload = _read(client)
    fake.received.append(payload)  # the handshake response
    seq = _ask_for_the_password(client, plugin, seq, fake)
    _send(client, seq + 1, b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied")
    client.close()


def _ask_for_the_password(client: socket.socket, plugin: str, seq: int, fake: FakeMysql) -> int:
    if plugin == "caching_sha2_password":
        _send(client, seq + 1, b"\x01\x04")  # perform full authentication
        seq, payload = _read(client)
        if payload == b"\x02":  # no TLS: the client asks for the public key
            _send(client, seq + 1, b"\x01" + _RSA_PEM)
            seq, payload = _read(client)
            payload = _rsa_plaintext(payload)
        fake.received.append(payload)
    elif not fake.tls_used:  # sha256_password without TLS: the key, then the password
        _send(client, seq + 1, b"\x01" + _RSA_PEM)
        seq, payload = _read(client)
        fake.received.append(_rsa_plaintext(payload))
    return seq


def _rsa_plaintext(ciphertext: bytes) -> bytes:
    """Undo the client's RSA-OAEP (SHA-1) and the XOR with the scramble."""
    oaep = padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)  # noqa: S303 - the protocol's
    xored = _RSA_KEY.decrypt(ciphertext, oaep)
    return bytes(b ^ SCRAMBLE[i % len(SCRAMBLE)] for i, b in enumerate(xored))


def _greeting(plugin: str, capabilities: int) -> bytes:
    return (
        b"\x0a8.0.36-fake\x00" + struct.pack("<I", 7) + SCRAMBLE[:8] + b"\x00"
        + struct.pack("<HBHHB", capabilities & 0xFFFF, 45, 2, capabilities >> 16, 21)
        + b"\x00" * 10 + SCRAMBLE[8:] + b"\x00" + plugin.encode() + b"\x00"
    )  # fmt: skip


def _send(client: socket.socket, seq: int, payload: bytes) -> None:
    client.sendall(len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload)


def _read(client: socket.socket) -> tuple[int, bytes]:
    header = read_exactly(client, 4)
    return header[3], read_exactly(client, int.from_bytes(header[:3], "little"))

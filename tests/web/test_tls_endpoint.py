"""Real TLS handshakes with the served endpoint: 1.2 and 1.3 with AEAD suites only.

Each refusal is measured against a control: a throwaway server that accepts
the same old protocol or suite, proving this client really offered it (a
client that cannot speak TLS 1.0 would make a refusal test pass for nothing).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.tls_control import PERMISSIVE, permissive_server
from tests.web_fixtures import LiveServer

# Offering TLS 1.0/1.1 on purpose is the point of these tests.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


def client_context(version: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = version
    context.set_ciphers(ciphers or PERMISSIVE)
    return context


def handshake(port: int, context: ssl.SSLContext) -> tuple[str, str] | None:
    """(protocol, cipher) on success, None when the server refuses."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            cipher = tls.cipher()
            return (tls.version() or "", cipher[0] if cipher else "")
    except (ssl.SSLError, ConnectionResetError):
        return None


@pytest.fixture(scope="module")
def permissive_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A control server that accepts TLS 1.0-1.3 and every suite, with the same kind of key."""
    with permissive_server() as port:
        yield port


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_below_1_2_is_refused(
    live_server: LiveServer, permissive_port: int, version: ssl.TLSVersion
) -> None:
    assert handshake(permissive_port, client_context(version)) is not None, (
        "control: client offers it"
    )
    assert handshake(live_server.port, client_context(version)) is None


def test_tls_1_2_without_an_aead_suite_is_refused(
    live_server: LiveServer, permissive_port: int
) -> None:
    cbc_only = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA256:AES128-SHA"
    assert handshake(permissive_port, client_context(ssl.TLSVersion.TLSv1_2, cbc_only)) is not None
    assert handshake(live_server.port, client_context(ssl.TLSVersion.TLSv1_2, cbc_only)) is None


@pytest.mark.parametrize(
    ("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")]
)
def test_tls_1_2_and_1_3_are_served_with_aead_suites(
    live_server: LiveServer, version: ssl.TLSVersion, name: str
) -> None:
    agreed = handshake(live_server.port, client_context(version))
    assert agreed is not None
    protocol, cipher = agreed
    assert protocol == name
    assert "GCM" in cipher or "CHACHA20" in cipher

"""A deliberately weak TLS server on loopback, for tests that prove a TLS check bites."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator

from agent_keys.private_files import memory_files
from agent_keys.randomness import system_random
from agent_keys.tls_identity import generate_tls_identity
from vault.context import utc_now

PERMISSIVE = "ALL:@SECLEVEL=0"


def permissive_server_context() -> ssl.SSLContext:
    """TLS 1.0-1.3 and every suite OpenSSL has, with the same kind of key as the endpoint."""
    identity = generate_tls_identity([], utc_now(), system_random)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers(PERMISSIVE)
    with memory_files(identity.chain_pem, identity.private_key_pem().reveal()) as (chain, key):
        context.load_cert_chain(chain, key)
    return context


@contextlib.contextmanager
def permissive_server() -> Iterator[int]:
    """Serve ``permissive_server_context`` on a free port until the block ends.

    Each connection is read until the client closes it, so renegotiation
    attempts and closes are answered as a real server would."""
    context = permissive_server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(4096):
                    pass
        except (ssl.SSLError, OSError):
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)

"""Whether the endpoint completes a TLS handshake: the moment it is ready.

The parent binds the socket, but only a worker in accept() finishes a
handshake, so "listening" is not "ready".  The parent asks its own port, as a
client would, before it tells a service manager READY=1.
"""

from __future__ import annotations

import socket
import ssl
import time

from web.server.systemd_notify import ServiceManager

# Ask the wildcard address through loopback: it answers there too.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped, not bound
_ATTEMPT_SECONDS = 2.0


def handshake_answers(bound: tuple[str, int], within_seconds: float) -> bool:
    """Whether a TLS handshake with the endpoint bound to ``bound`` (host, port)
    completes within ``within_seconds`` (asked again every 0.1 s until then)."""
    host, port = bound
    address = (_LOOPBACK_FOR.get(host, host), port)
    # Only the handshake is checked here, not who answers: that is this process.
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + within_seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            with (
                socket.create_connection(address, timeout=min(_ATTEMPT_SECONDS, left)) as raw,
                client.wrap_socket(raw),
            ):
                return True
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    return False


def ready_once_answering(
    manager: ServiceManager, bound: tuple[str, int], status: str, within_seconds: float
) -> bool:
    """Tell ``manager`` READY=1 (and ``status``) once the endpoint bound to ``bound``
    completes a TLS handshake; if none does within ``within_seconds``, only a
    STATUS saying so (the unit's TimeoutStartSec then fails the start)."""
    if handshake_answers(bound, within_seconds):
        return manager.notify("READY=1", f"STATUS={status}")
    manager.notify(f"STATUS=no worker completed a TLS handshake in {within_seconds:g} s")
    return False

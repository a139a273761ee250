"""What the fake servers share: one connection served on a thread, and exact reads."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def serving_once(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A listener on 127.0.0.1 whose first connection ``serve`` answers on a thread;
    yields its port.  A client that hangs up or refuses the TLS ends ``serve``
    quietly: that is what the tests provoke."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def run() -> None:
        with contextlib.suppress(OSError, ssl.SSLError, ValueError):
            client, _ = listener.accept()
            client.settimeout(3)
            with client:
                serve(client)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=5)
        listener.close()


def read_exactly(client: socket.socket, count: int) -> bytes:
    """``count`` bytes; ``ValueError`` if the client hangs up first."""
    data = b""
    while len(data) < count:
        chunk = client.recv(count - len(data))
        if not chunk:
            raise ValueError("the client hung up")
        data += chunk
    return data

"""How long and how much each phase of a connection may take.

A client is bounded at every step it controls: the TLS handshake, the wait for
a request, its head, its body and the reading of the answer.  No step holds a
worker thread: only a complete request reaches the app, so a silent or slow
client costs one socket and a few kilobytes, never a thread (issue 15; threat
T-WEB-20).  The app's own time is bounded by the app (the connection-test
deadline, the database's busy timeout), not here: a reply is never abandoned
half-done, so a client is never told "failed" about a change that was made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

KIB = 1024


@dataclass(frozen=True)
class ServerLimits:
    """The bounds of one endpoint; the defaults are the production ones."""

    handshake_seconds: float = 5.0
    """From accept to a finished TLS handshake (a silent TCP client ends here)."""
    head_seconds: float = 10.0
    """From the end of the handshake, or the first byte of a later request, to
    the end of the request's head (slowloris ends here)."""
    body_seconds: float = 20.0
    """From the end of the head to the end of the body."""
    request_seconds: float = 30.0
    """A whole request, head and body, however its bytes were spread."""
    idle_seconds: float = 60.0
    """A keep-alive connection with no request in flight."""
    write_seconds: float = 20.0
    """The client must take the answer in this time."""
    max_head_bytes: int = 16 * KIB
    """The request line and headers together."""
    max_body_bytes: int = 64 * KIB
    """An EncryptedCredential is at most 32 KiB; the app checks its own limit too."""
    connections_per_address: int = 256
    """Open connections one client address may hold on one worker process."""
    max_connections: int = 4096
    """Open connections on one worker process; past it, new ones are closed at once."""
    threads: int = 6
    """App threads per worker process.  Requests are CPU work under one GIL: more
    threads only contend for it (encrypt-value at 32 connections measured 1,460
    req/s with 16, 2,090 with 6, 1,980 with 3); a third of them may wait on
    connection tests (T-CN-7)."""


def default_workers() -> int:
    """One worker process per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)

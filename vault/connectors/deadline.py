"""One overall deadline for a connection test: lookup, connect, TLS, login and query.

A driver's own timeouts bound each step (a connect, a read) but not their sum:
a host that trickles one byte a second, or a name with eight addresses that
all accept and stay silent, held a web worker thread for minutes (issue 15).
``Deadline`` is the one budget every tester spends from: each step gets what is
left, and ``guarding`` shuts a connection's socket when the budget runs out,
which ends whatever read a driver is blocked in (the next read sees the end of
the stream).  The agent's job-time connections take no deadline; they keep
their own timeout.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")

# Name lookups run here so a test can stop waiting for one.  A lookup that
# never returns keeps its thread (getaddrinfo cannot be interrupted), so the
# pool is small: stuck lookups queue behind each other instead of piling up.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gwvault-lookup")


class Deadline:
    """A budget of ``seconds`` from now, on the monotonic clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (0.0 once it has passed)."""
        return max(0.0, self._end - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def left(self) -> float:
        """Seconds left for the next step; ``TimeoutError`` if none are."""
        remaining = self.remaining()
        if remaining <= 0.0:
            raise TimeoutError(f"timed out: no answer within {self.seconds:g} s")
        return remaining

    def run(self, step: Callable[[], T]) -> T:
        """``step()`` on a lookup thread, waited for until the deadline (``TimeoutError``)."""
        future = _LOOKUPS.submit(step)
        try:
            return future.result(timeout=self.left())
        except FutureTimeout as e:
            future.cancel()  # still queued: it never runs
            raise TimeoutError(f"timed out: no answer within {self.seconds:g} s") from e

    @contextlib.contextmanager
    def guarding(self, sock: socket.socket | int) -> Iterator[None]:
        """Shut ``sock`` (a socket or its descriptor) down if the deadline passes
        before the block ends.  A duplicate descriptor is watched: shutdown acts on
        the connection, so it reaches the socket even after TLS wrapped (detached) it."""
        fd = sock if isinstance(sock, int) else sock.fileno()
        watched = socket.socket(fileno=os.dup(fd))
        timer = threading.Timer(self.remaining(), _shut, (watched,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            timer.join()
            watched.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the driver: nothing to end
        sock.shutdown(socket.SHUT_RDWR)

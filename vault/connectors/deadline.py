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
from typing import TypeVar

T = TypeVar("T")

# Name lookups run on their own daemon threads so a test can stop waiting for
# one.  A lookup that never returns keeps its thread (getaddrinfo cannot be
# interrupted), so at most this many run at once: stuck lookups make later ones
# wait (within their own deadlines) instead of piling up threads.
_LOOKUPS = threading.BoundedSemaphore(4)


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
            raise self._timed_out()
        return remaining

    def run(self, step: Callable[[], T]) -> T:
        """``step()`` on a lookup thread, waited for until the deadline: its result,
        what it raised, or ``TimeoutError``."""
        if not _LOOKUPS.acquire(timeout=self.left()):
            raise self._timed_out()
        outcome: list[T] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                outcome.append(step())
            except BaseException as e:  # handed to the waiting caller
                failure.append(e)
            finally:
                _LOOKUPS.release()
                done.set()

        # A daemon: a lookup still stuck at exit must not hold the process up.
        threading.Thread(target=work, name="gwvault-lookup", daemon=True).start()
        if not done.wait(self.remaining()):
            raise self._timed_out()
        if failure:
            raise failure[0]
        return outcome[0]

    def _timed_out(self) -> TimeoutError:
        return TimeoutError(f"timed out: no answer within {self.seconds:g} s")

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

"""How many connection tests may run at once: per caller, per entry link, per process.

A test holds a server worker thread until the data source answers or its
deadline passes (``vault.connectors.deadline``); sixteen tests against a silent
host took all sixteen worker threads (issue 15).  So each caller (user or API
token) may run ``PER_CALLER`` tests at once, each entry link ``PER_LINK``, and
the process ``total`` (below the server's worker threads, so tests never take
them all).  The excess is refused at once, not queued (a queued request would
hold a worker thread too), with 429 and a Retry-After.

A refusal writes no audit entry: it costs the caller nothing, so recording each
one would let a caller turn a cheap request into a disk write.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from vault.access.policy import Principal
from web.errors import TooManyConnectionTests

PER_CALLER = 2
PER_LINK = 1
DEFAULT_TOTAL = 4


class ConnectionTestSlots:
    """The running connection tests of one process, counted under one lock."""

    def __init__(self, total: int = DEFAULT_TOTAL) -> None:
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError("the number of concurrent connection tests must be 1 or more")
        self.total = total
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    @contextlib.contextmanager
    def held(self, principal: Principal) -> Iterator[None]:
        """One slot for ``principal``'s test while the block runs; raises
        ``TooManyConnectionTests`` at once when none is free."""
        key = principal.actor
        limit = PER_LINK if principal.kind == "entry-link" else PER_CALLER
        with self._lock:
            if sum(self._running.values()) >= self.total:
                raise TooManyConnectionTests(
                    "the gateway is running as many connection tests as it allows at once;"
                    " try again in a few seconds"
                )
            if self._running.get(key, 0) >= limit:
                raise TooManyConnectionTests(_per_caller_message(principal.kind, limit))
            self._running[key] = self._running.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._running.pop(key) - 1
                if left:
                    self._running[key] = left

    @property
    def running(self) -> int:
        with self._lock:
            return sum(self._running.values())


def _per_caller_message(kind: str, limit: int) -> str:
    if kind == "entry-link":
        return "a connection test with this entry link is still running; wait for it to finish"
    return f"you already have {limit} connection tests running; wait for one to finish"

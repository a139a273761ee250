"""Rate-limiting the audit entries anonymous clients can cause, without losing count.

A failed sign-in for a user name that does not exist, an expired entry link,
an entry link's used-up tests and a blob posted to an entry link that does not
open each write an audit entry, and need nothing but network access: a loop
could grow the trail without bound (issue 15).  Per process, per vault and
per (action, client address), the first ``PER_WINDOW`` such events in a
``WINDOW`` are written as before; the rest are only counted, and one entry
with the count, the window and the address is written when the window closes
(on the next such event after it, or by ``flush``, which the server calls
periodically and at shutdown).

Known users' failed sign-ins and lockouts are never coalesced (brute-force
detection reads them, T-WEB-5), nor is anything an authenticated caller does.

This module holds the counts only; ``AuditTrail.record_unauthenticated``
decides and writes.  It reads no clock: callers hand in ``now``.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass

PER_WINDOW = 5
WINDOW = datetime.timedelta(minutes=1)
MAX_KEYS = 4096
OTHER_CLIENTS = "other addresses"
"""Where events are counted once ``MAX_KEYS`` windows are open (memory stays bounded)."""

_Key = tuple[str, str, str]  # gateway id, action, client address


@dataclass
class _Window:
    start: datetime.datetime
    outcome: str
    written: int = 0
    counted: int = 0


@dataclass(frozen=True)
class Coalesced:
    """Events of one action from one address that were counted, not written."""

    action: str
    client: str
    outcome: str
    count: int
    window_start: str
    window_end: str


class AuditCoalescer:
    """Per-process counts of anonymous events, by vault, action and client address."""

    def __init__(
        self,
        per_window: int = PER_WINDOW,
        window: datetime.timedelta = WINDOW,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._per_window = per_window
        self._window = window
        self._max_keys = max_keys
        self._windows: dict[_Key, _Window] = {}
        self._lock = threading.Lock()

    def admit(
        self, gateway_id: str, action: str, client: str, outcome: str, now: datetime.datetime
    ) -> bool:
        """Whether to write this event now (True) or only count it (False)."""
        with self._lock:
            key = (gateway_id, action, client)
            if key not in self._windows and len(self._windows) >= self._max_keys:
                key = (gateway_id, action, OTHER_CLIENTS)
            window = self._windows.get(key)
            if window is None or now >= window.start + self._window:
                if window is not None and window.counted:
                    # Closed, its count not yet written (the event came inside a
                    # write, where none is taken out): counted with it.
                    window.counted += 1
                    return False
                window = self._windows[key] = _Window(now, outcome)
            if window.written < self._per_window:
                window.written += 1
                return True
            window.counted += 1
            return False

    def take(
        self, gateway_id: str, now: datetime.datetime, *, everything: bool = False
    ) -> list[Coalesced]:
        """Remove and return the counts of the windows of ``gateway_id`` closed by
        ``now`` (with ``everything``, the open ones too); forgets closed windows
        with nothing counted."""
        taken: list[Coalesced] = []
        with self._lock:
            for key, window in list(self._windows.items()):
                closed = now >= window.start + self._window
                if key[0] != gateway_id or not (closed or everything):
                    continue
                del self._windows[key]
                if window.counted:
                    end = min(now, window.start + self._window)
                    taken.append(
                        Coalesced(key[1], key[2], window.outcome, window.counted,
                                  _iso(window.start), _iso(end))
                    )  # fmt: skip
        return taken

    def reset(self) -> None:
        """Forget every count (tests: each starts from a quiet process)."""
        with self._lock:
            self._windows.clear()

    def give_back(self, gateway_id: str, taken: list[Coalesced]) -> None:
        """Counts whose entry could not be written (its write failed): kept for the
        next try, in a window that is already closed."""
        with self._lock:
            for item in taken:
                start = datetime.datetime.fromisoformat(item.window_start)
                key = (gateway_id, item.action, item.client)
                window = self._windows.setdefault(key, _Window(start - self._window, item.outcome))
                window.counted += item.count


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


COALESCER = AuditCoalescer()
"""This process's counts (each worker process keeps its own)."""

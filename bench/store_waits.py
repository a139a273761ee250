"""What the vault's PostgreSQL sessions wait for, sampled from ``pg_stat_activity``.

A figure says what bounds it: sessions waiting on a lock (the store's one
write lock: ``vault.store.postgres_engine``), on the WAL's sync to disk (a
durable commit), or idle inside a transaction while the member computes its
next statement, against sessions running or idle between transactions.  Each
share is the fraction of all (session, sample) pairs, so they add up to 1.

Sampling runs on a thread of the bench's own process, a few dozen times a
second over one plain connection: a small cost beside the load it watches.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.postgres_servers import PostgresServer

INTERVAL_SECONDS = 0.03
APPLICATION = "gwvault"  # the application_name the store's engine connects with
_SESSIONS = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
    " WHERE application_name = %s AND pid <> pg_backend_pid()"
)


def kind_of_wait(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    """One session's sample as a share's name."""
    if wait_type == "Lock":
        return "pg_lock_wait"
    if wait_event in {"WALSync", "WALWrite"}:
        return "pg_wal_sync"
    if state == "idle in transaction":
        return "pg_client_in_transaction"
    if state == "active":
        return "pg_running"
    return "pg_idle"


@contextlib.contextmanager
def sampled_waits(server: PostgresServer) -> Iterator[dict[str, float]]:
    """Sample the vault's sessions until the block ends; the yielded dict then holds
    each kind's share (every kind present, 0 where none was seen)."""
    seen: Counter[str] = Counter()
    failed: list[Exception] = []
    stop = threading.Event()

    def sample() -> None:
        try:
            with server.admin() as db:
                while not stop.wait(INTERVAL_SECONDS):
                    for row in db.execute(_SESSIONS, (APPLICATION,)).fetchall():
                        seen[kind_of_wait(*row)] += 1
        except Exception as e:  # reported after the block: a figure without its waits is wrong
            failed.append(e)

    sampler = threading.Thread(target=sample, name="pg-wait-sampler", daemon=True)
    sampler.start()
    shares: dict[str, float] = {}
    try:
        yield shares
    finally:
        stop.set()
        sampler.join()
    if failed:
        raise RuntimeError(f"sampling {server}'s sessions failed: {failed[0]}") from failed[0]
    total = sum(seen.values()) or 1
    kinds = ("pg_lock_wait", "pg_wal_sync", "pg_client_in_transaction", "pg_running", "pg_idle")
    shares.update({kind: seen[kind] / total for kind in kinds})

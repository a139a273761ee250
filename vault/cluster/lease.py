"""Singleton work in a cluster, on the database clock, fenced by a token.

One row per kind of work (``leases``): who holds it, until when (ms on the
database server's clock, which every member shares, so no member's own clock
decides), and a fencing token that rises each time the holder changes.  The
lease is taken and every step of the work is fenced inside the transaction
that does the step (``fenced``): a holder that paused past its expiry, while
another member took over, finds its token stale and its step refused, so two
members never interleave steps of the same work (threat T-CL-4).

Nothing is held between transactions and nothing is tied to a session (no
advisory locks): it works through a transaction-mode pooler and survives a
failover, where the promoted server has the committed lease row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agent_keys.errors import ConflictError
from vault.store.vault_store import VaultStore

DEFAULT_TTL_MS = 30_000


class LeaseLostError(ConflictError):
    """Another member holds the lease (or took it over): this step is not done."""


@dataclass(frozen=True)
class Lease:
    """A held lease: its work, its holder, and the token that fences its steps."""

    name: str
    holder: str
    token: int


def acquire(store: VaultStore, name: str, holder: str, ttl_ms: int = DEFAULT_TTL_MS) -> Lease:
    """Take lease ``name`` for ``holder`` (or renew it), in its own write;
    ``LeaseLostError`` while another holder's lease has not expired."""
    with store.write():
        now = store.engine.database_time_ms()
        rows = store.rows("SELECT holder, token, expires_ms FROM leases WHERE name = ?", [name])
        if not rows:
            token = 1
            store.execute(
                "INSERT INTO leases (name, holder, token, expires_ms) VALUES (?, ?, ?, ?)",
                [name, holder, token, now + ttl_ms],
            )
            return Lease(name, holder, token)
        row = rows[0]
        if row["holder"] != holder and int(row["expires_ms"]) > now:
            raise LeaseLostError(
                f"another member ({row['holder']}) is doing {name}; it expires in"
                f" {(int(row['expires_ms']) - now) / 1000:.0f} s if that member stopped"
            )
        token = int(row["token"]) + (0 if row["holder"] == holder else 1)
        store.execute(
            "UPDATE leases SET holder = ?, token = ?, expires_ms = ? WHERE name = ?",
            [holder, token, now + ttl_ms, name],
        )
        return Lease(name, holder, token)


def check_fence(store: VaultStore, lease: Lease, ttl_ms: int = DEFAULT_TTL_MS) -> None:
    """Inside a step's write: the lease is still ``lease`` (same holder, same
    token, not expired); extend it.  ``LeaseLostError`` otherwise, which rolls
    the step back."""
    if not store.in_write:
        raise ConflictError("a fenced step must run inside its transaction")
    now = store.engine.database_time_ms()
    rows = store.rows(
        "SELECT 1 FROM leases WHERE name = ? AND holder = ? AND token = ? AND expires_ms > ?",
        [lease.name, lease.holder, lease.token, now],
    )
    if not rows:
        raise LeaseLostError(f"the {lease.name} lease was taken over; this step was not done")
    store.execute("UPDATE leases SET expires_ms = ? WHERE name = ?", [now + ttl_ms, lease.name])


@contextmanager
def fenced(store: VaultStore, lease: Lease, ttl_ms: int = DEFAULT_TTL_MS) -> Iterator[None]:
    """One step of leased work: a write whose first act is the fence check (which
    extends the lease by ``ttl_ms``)."""
    with store.write():
        check_fence(store, lease, ttl_ms)
        yield


def release(store: VaultStore, lease: Lease) -> None:
    """Give the lease up at once (the work is done), if it is still ours."""
    with store.write():
        store.execute(
            "UPDATE leases SET expires_ms = 0 WHERE name = ? AND holder = ? AND token = ?",
            [lease.name, lease.holder, lease.token],
        )


def leases(store: VaultStore) -> list[dict[str, object]]:
    """Every lease row, with how long it still runs (negative: expired)."""
    now = store.engine.database_time_ms()
    rows = store.rows("SELECT name, holder, token, expires_ms FROM leases ORDER BY name", [])
    return [
        {"name": r["name"], "holder": r["holder"], "token": int(r["token"]),
         "expires_in_s": round((int(r["expires_ms"]) - now) / 1000, 1)}
        for r in rows
    ]  # fmt: skip

"""A member's heartbeat: its ``members.last_seen_ms``, on the database clock.

The server's housekeeper beats every few seconds (``web.housekeeping``), so
``cluster members`` and ``cluster status`` tell a member that serves from one
that stopped, on the one clock every member shares.  Only that column changes:
it is outside the row's seal and bumps no facts generation
(``vault.store.postgres_schema``), so no member re-reads its checked facts for
a heartbeat.
"""

from __future__ import annotations

from vault.gateway import Gateway


def record_heartbeat(gateway: Gateway) -> None:
    """Set this member's ``last_seen_ms`` to the database's now; nothing on a
    single machine or for a member whose row is gone (removed).

    Outside the store's write lock, on purpose: the one row's update takes the
    row's own lock, records nothing in the audit trail, and must not wait
    behind a rotation's batches.  Raises ``StorageError`` if the store fails.
    """
    member_id = gateway.member_id
    if member_id is None:
        return
    store = gateway.store
    store.execute(
        "UPDATE members SET last_seen_ms = ? WHERE id = ?",
        [store.engine.database_time_ms(), member_id],
    )

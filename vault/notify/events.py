"""Raising an event about a credential: an audit entry and a queued notification.

A credential's health changed, its expiry or rotation is near, it was purged:
the event is recorded in the audit trail and queued in ``notify_events`` in the
same write, so it is never sent without being recorded, nor recorded without
being queued.  Delivery to the admin's sinks (webhook, email) happens later,
from the queue (``vault.notify.delivery``), retried until each sink takes it.

An event's body is what a sink receives: kind, credential name, time and the
details given, which must never hold a secret (the driver's message of a test
stays in the trail and the admin's view, never in a notification).
"""

from __future__ import annotations

from typing import Literal

from vault.audit.trail import DetailValue
from vault.format.audit_chain import canonical_json
from vault.gateway import Gateway

EventKind = Literal[
    "credential.status-changed",  # a test's reason code differs from the last one
    "credential.expiring",  # 30, 7 or 1 days before the owner's expiry date
    "credential.expired",  # the expiry date has passed
    "credential.rotation-due",  # the owner's rotation period has passed since the last put
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "credential.status-changed",
    "credential.expiring",
    "credential.expired",
    "credential.rotation-due",
)


def raise_event(gateway: Gateway, kind: EventKind, credential: str, **details: DetailValue) -> int:
    """Record ``kind`` for ``credential`` in the trail and queue it for the sinks,
    in the caller's write or one of its own; returns the audit entry's seq."""
    store = gateway.store
    with store.write():
        seq = gateway.audit.record(kind, credential, "ok", **details)
        # The entry's own time, so the queued event and the trail agree exactly.
        at = str(store.rows("SELECT at FROM audit_events WHERE seq = ?", [seq])[0]["at"])
        body = {"kind": kind, "credential": credential, "at": at, "audit_seq": seq,
                "gateway_id": gateway.gateway_id, "details": details}  # fmt: skip
        store.execute(
            "INSERT INTO notify_events (kind, target, at, body) VALUES (?, ?, ?, ?)",
            [kind, credential, at, canonical_json(body)],
        )
    return seq

"""The one audit interface of the service layer.

Every lifecycle step (init, credential created/updated/tested/used/deleted,
...) is recorded through ``AuditTrail.record`` inside the same transaction as
the change, so the change and its record commit together; if the record cannot
be written the change fails (fail closed).  Entries carry identifiers, never
contents.  The audit issue adds the hash chain, MAC and signed checkpoints.
"""

from __future__ import annotations

import json
from typing import Literal

from vault.context import RequestContext
from vault.store import VaultStore

Outcome = Literal["ok", "failed", "refused"]
DetailValue = str | int | bool | None


class AuditTrail:
    """Appends lifecycle events for one request to the vault's audit table."""

    def __init__(self, store: VaultStore, context: RequestContext) -> None:
        self._store = store
        self._context = context

    def record(
        self,
        action: str,
        target: str | None,
        outcome: Outcome = "ok",
        **details: DetailValue,
    ) -> int:
        """Append one event; joins the caller's write transaction or opens one.

        Raises ``StorageError`` when it cannot be written, which aborts the
        enclosing change.
        """
        entry = {
            "at": self._context.now_iso(),
            "actor": self._context.actor,
            "channel": self._context.channel,
            "action": action,
            "target": target,
            "outcome": outcome,
            "request_id": self._context.request_id,
            "details": json.dumps(details, sort_keys=True, separators=(",", ":")),
        }
        with self._store.write():
            return self._store.append_audit(entry)

"""The admin's audit sinks: add and remove them (``standing`` lists and checks them).

Every add and remove is an entry for the target ``audit-sinks`` naming every
sink standing after it (``vault.audit.sinks.standing``).  A new sink starts at
the entry that adds it: it receives what happens from then on, not the
history (an export carries that).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager

from agent_keys.errors import ConflictError, NotFoundError
from vault.access.admin_write import admin_write
from vault.access.callers import Caller
from vault.access.policy import Action
from vault.audit.sinks.config import AuditSinkConfig, check_policy
from vault.audit.sinks.standing import ADDED, REMOVED, TARGET, AuditSink, load_sinks, sink_ids
from vault.gateway import Gateway
from vault.notify.sink_config import check_sink_name

MAX_SINKS = 8
_ACTION: Action = "audit.sinks.manage"


class AuditSinkService:
    """Manage the sinks; ``caller`` is a web or API caller (None: the CLI's operator)."""

    def __init__(self, gateway: Gateway, caller: Caller | None = None) -> None:
        self._gateway = gateway
        self._caller = caller

    def add(self, name: str, config: AuditSinkConfig, policy: str) -> AuditSink:
        check_sink_name(name)
        policy = check_policy(policy)
        gateway, store = self._gateway, self._gateway.store
        sink_id = str(uuid.UUID(bytes=gateway.context.random(16), version=4))
        now = gateway.context.now_iso()
        sink = AuditSink(sink_id, name, policy, config, now)
        with self._deciding(name):
            standing = load_sinks(gateway)
            if any(other.name == name for other in standing):
                raise ConflictError(f"an audit sink named {name} exists; remove it first")
            if len(standing) >= MAX_SINKS:
                raise ConflictError(f"a vault has at most {MAX_SINKS} audit sinks")
            row = {"id": sink_id, "name": name, "kind": sink.kind, "policy": policy,
                   "config": sink.config_text, "created_at": now}  # fmt: skip
            store.execute(
                "INSERT INTO audit_sinks (id, name, kind, policy, config, created_at, mac)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*row.values(), gateway.rows.sealed("audit_sinks", row)],
            )
            # The sink starts at its own "added" entry (the next one), and after
            # every checkpoint signed so far.
            tail = store.audit_tail()
            checkpoints = store.rows(
                "SELECT coalesce(max(id), 0) AS n FROM audit_checkpoints", []
            )  # fmt: skip
            store.execute(
                "INSERT INTO audit_sink_places (sink_id, through_seq, through_checkpoint)"
                " VALUES (?, ?, ?)",
                [sink_id, tail[0] if tail else 0, int(checkpoints[0]["n"])],
            )
            gateway.audit.record(
                ADDED, TARGET, name=name, sink_id=sink_id, kind=sink.kind, policy=policy,
                destination=sink.destination, sinks=sink_ids([*standing, sink]),
            )  # fmt: skip
        return sink

    def remove(self, name: str) -> None:
        """Remove a sink and its place; the entry that says so is the last it is sent."""
        store = self._gateway.store
        with self._deciding(name):
            standing = load_sinks(self._gateway)
            sink = next((s for s in standing if s.name == name), None)
            if sink is None:
                raise NotFoundError(f"no audit sink named {name}; see: gwvault audit sink list")
            self._gateway.audit.record(
                REMOVED, TARGET, name=name, sink_id=sink.id, kind=sink.kind,
                sinks=sink_ids([s for s in standing if s.id != sink.id]),
            )  # fmt: skip
            # The row goes in the same write, so its commit is not sent to this
            # sink: a stopped block sink can always be removed.
            store.execute("DELETE FROM audit_sink_places WHERE sink_id = ?", [sink.id])
            store.execute("DELETE FROM audit_sinks WHERE id = ?", [sink.id])

    def _deciding(self, name: str | None) -> AbstractContextManager[None]:
        """A write in which an admin's right is decided and acted on (``admin_write``)."""
        return admin_write(self._gateway, self._caller, "audit.sinks.manage", name)

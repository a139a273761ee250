"""The admin's audit sinks: add, list, remove, and the checked list a commit sends to.

A sink row is sealed (``vault.access.row_seal``: id, name, kind, policy,
configuration, creation time), so someone who can write the database but holds
no key cannot point the trail at a server of theirs, swap the CA its
certificate is checked against, or turn ``block`` into ``buffer``.  Removing a
row is not enough to silence a sink either: every add and remove is an entry
for the one target ``audit-sinks`` that names every sink standing after it,
and the rows must be exactly those (a row deleted with plain SQL, or one put
back after its removal, fails every later commit that would send entries:
fail closed).

A new sink starts at the entry that adds it: it receives what happens from
then on, not the history (an export carries that).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import AccessDeniedError, ConflictError, InvalidInputError, NotFoundError
from vault.access.callers import Caller
from vault.access.policy import Action
from vault.access.row_seal import TamperedRowError, record_refusal
from vault.audit.sinks.config import (
    AuditSinkConfig,
    Policy,
    SinkKind,
    check_policy,
    config_from_text,
    config_text,
    destination_of,
    kind_of,
)
from vault.gateway import Gateway
from vault.notify.sink_config import check_sink_name

ADDED, REMOVED = "audit.sink-added", "audit.sink-removed"
TARGET = "audit-sinks"
"""The one target of every add and remove: the newest such entry lists the sinks."""
MAX_SINKS = 8
_ACTION: Action = "audit.sinks.manage"


@dataclass(frozen=True)
class AuditSink:
    """A sink as stored and checked."""

    id: str
    name: str
    policy: Policy
    config: AuditSinkConfig
    created_at: str

    @property
    def kind(self) -> SinkKind:
        return kind_of(self.config)

    @property
    def destination(self) -> str:
        return destination_of(self.config)

    @property
    def config_text(self) -> str:
        return config_text(self.config)

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "policy": self.policy,
                "destination": self.destination, "created_at": self.created_at}  # fmt: skip


def configured_sinks(gateway: Gateway) -> tuple[AuditSink, ...]:
    """Every sink, checked (seal, and the trail's list of standing sinks); kept
    by a long-lived process while the vault's facts are unchanged (a sink row's
    change bumps them).  ``TamperedRowError`` when the rows are not the trail's."""
    return gateway.cached_fact("audit_sinks", lambda: _load(gateway))


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
            standing = _load(gateway)
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
                destination=sink.destination, sinks=_ids([*standing, sink]),
            )  # fmt: skip
        return sink

    def sinks(self) -> list[AuditSink]:
        """Every sink, checked, by name."""
        with self._deciding(None):
            return sorted(_load(self._gateway), key=lambda sink: sink.name)

    def remove(self, name: str) -> None:
        """Remove a sink and its place; the entry that says so is the last it is sent."""
        store = self._gateway.store
        with self._deciding(name):
            standing = _load(self._gateway)
            sink = next((s for s in standing if s.name == name), None)
            if sink is None:
                raise NotFoundError(f"no audit sink named {name}; see: gwvault audit sink list")
            self._gateway.audit.record(
                REMOVED, TARGET, name=name, sink_id=sink.id, kind=sink.kind,
                sinks=_ids([s for s in standing if s.id != sink.id]),
            )  # fmt: skip
            # The row goes in the same write, so its commit is not sent to this
            # sink: a stopped block sink can always be removed.
            store.execute("DELETE FROM audit_sink_places WHERE sink_id = ?", [sink.id])
            store.execute("DELETE FROM audit_sinks WHERE id = ?", [sink.id])

    @contextmanager
    def _deciding(self, name: str | None) -> Iterator[None]:
        """A write in which an admin's right is decided and acted on; a refusal
        rolls it back, so it is recorded after, on its own."""
        try:
            with self._gateway.store.write():
                if self._caller is not None:
                    self._caller.authorize(self._gateway, _ACTION)
                yield
        except AccessDeniedError as e:
            self._gateway.audit.record(
                "access.refused", name, "refused", refused_action=_ACTION, reason=str(e)[:200]
            )
            raise
        except TamperedRowError as e:
            record_refusal(self._gateway.audit, e)
            raise


def _ids(sinks: list[AuditSink]) -> str:
    return ",".join(sorted(sink.id for sink in sinks))


def _load(gateway: Gateway) -> tuple[AuditSink, ...]:
    columns = gateway.rows.columns("audit_sinks")
    rows = gateway.store.rows(f"SELECT {columns} FROM audit_sinks ORDER BY id", [])  # noqa: S608 - fixed columns
    sinks = tuple(_checked(gateway, row) for row in rows)
    latest = gateway.rows.latest_audited(TARGET, (ADDED, REMOVED))
    listed = "" if latest is None else str(latest[1].get("sinks", ""))
    if listed != _ids(list(sinks)):
        # A row deleted or added without gwvault (or the entry's list edited,
        # which its MAC already refuses).
        first = rows[0]["id"] if rows else TARGET
        raise TamperedRowError("audit_sinks", first)
    return sinks


def _checked(gateway: Gateway, row: dict[str, Any]) -> AuditSink:
    gateway.rows.check("audit_sinks", row)
    try:
        config = config_from_text(row["kind"], row["config"])
        policy = check_policy(row["policy"])
    except (InvalidInputError, ValueError) as e:
        raise TamperedRowError("audit_sinks", row["id"]) from e
    return AuditSink(row["id"], row["name"], policy, config, row["created_at"])

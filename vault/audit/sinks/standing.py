"""The sinks standing now, checked, and how far behind the trail each is.

A sink row is sealed (``vault.access.row_seal``: id, name, kind, policy,
configuration, creation time), so someone who can write the database but holds
no key cannot point the trail at a server of theirs, swap the CA its
certificate is checked against, or turn ``block`` into ``buffer``.  Removing a
row is not enough to silence a sink either: every add and remove is an entry
for the one target ``audit-sinks`` that names every sink standing after it,
and the rows must be exactly those (a row deleted with plain SQL, or one put
back after its removal, fails every later commit that would send entries:
fail closed).

Builds on the opened vault's parts, not on ``Gateway``, which calls in here
from each commit (``vault.audit.sinks.forwarding``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agent_keys.errors import InvalidInputError
from agent_keys.master_key import MasterKey
from vault.access.row_seal import RowSeal, TamperedRowError
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
from vault.audit.sinks.stream import Place, entries_behind, place_of
from vault.context import RequestContext
from vault.store.vault_store import VaultStore

ADDED, REMOVED = "audit.sink-added", "audit.sink-removed"
TARGET = "audit-sinks"
"""The one target of every add and remove: the newest such entry lists the sinks."""
T = TypeVar("T")


class SinkVault(Protocol):
    """What the sinks need of an opened vault (``Gateway`` is one)."""

    @property
    def gateway_id(self) -> str: ...

    store: VaultStore
    rows: RowSeal
    context: RequestContext

    def cached_fact(self, name: str, load: Callable[[], T]) -> T: ...

    def master_key_for(self, version: int) -> MasterKey: ...


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


def configured_sinks(vault: SinkVault) -> tuple[AuditSink, ...]:
    """Every sink, checked (seal, and the trail's list of standing sinks); kept
    by a long-lived process while the vault's facts are unchanged (a sink row's
    change bumps them).  ``TamperedRowError`` when the rows are not the trail's."""
    return vault.cached_fact("audit_sinks", lambda: load_sinks(vault))


def load_sinks(vault: SinkVault) -> tuple[AuditSink, ...]:
    """``configured_sinks`` read and checked now (inside a change to them)."""
    columns = vault.rows.columns("audit_sinks")
    rows = vault.store.rows(f"SELECT {columns} FROM audit_sinks ORDER BY id", [])  # noqa: S608 - fixed columns
    sinks = tuple(_checked(vault, row) for row in rows)
    latest = vault.rows.latest_audited(TARGET, (ADDED, REMOVED))
    # No entry: the trail was pruned past the last change (no verdict, as for
    # every sealed row; a planted row fails its seal above).
    if latest is not None and str(latest[1].get("sinks", "")) != sink_ids(list(sinks)):
        # A row deleted or added without gwvault (an edited list fails its MAC).
        raise TamperedRowError("audit_sinks", rows[0]["id"] if rows else TARGET)
    return sinks


def sink_ids(sinks: list[AuditSink]) -> str:
    """The list an add or remove entry records: the ids standing after it."""
    return ",".join(sorted(sink.id for sink in sinks))


def ever_had_sinks(store: VaultStore) -> bool:
    """Whether any sink was ever added: cheap, and needs no key, so a vault
    that never had one (most) pays two index probes per commit.  A row alone
    with no entry for it is a planted one and goes through the full check."""
    return bool(
        store.rows("SELECT 1 FROM audit_sinks LIMIT 1", [])
        or store.rows("SELECT 1 FROM audit_events WHERE target = ? LIMIT 1", [TARGET])
    )


def checked_place(store: VaultStore, sink: AuditSink) -> Place:
    place = place_of(store, sink.id)
    if place is None:  # a sink's place goes only with its row
        raise TamperedRowError("audit_sink_places", sink.id)
    return place


@dataclass(frozen=True)
class SinkLag:
    name: str
    policy: str
    destination: str
    behind: int  # entries not yet sent
    failing_since: str | None
    last_error: str | None


def sink_lags(vault: SinkVault, *, checked: bool = True) -> list[SinkLag]:
    """Each sink and how far behind the trail it is (for status, doctor, metrics).

    ``checked=False`` reads the rows without their seals, for a ``status`` that
    unlocks nothing (it says so); everything that acts on a sink checks them.
    """
    store = vault.store
    if not ever_had_sinks(store):
        return []
    with store.reading():
        if checked:
            sinks = [(s.id, s.name, s.policy, s.destination) for s in configured_sinks(vault)]
        else:
            sinks = [
                (row["id"], row["name"], row["policy"], row["kind"])
                for row in store.rows("SELECT id, name, policy, kind FROM audit_sinks", [])
            ]
        return [_lag(store, *sink) for sink in sorted(sinks, key=lambda s: s[1])]


def _lag(store: VaultStore, sink_id: str, name: str, policy: str, destination: str) -> SinkLag:
    rows = store.rows(
        "SELECT through_seq, through_checkpoint, failing_since, last_error"
        " FROM audit_sink_places WHERE sink_id = ?",
        [sink_id],
    )
    if not rows:
        raise TamperedRowError("audit_sink_places", sink_id)
    row = rows[0]
    place = Place(int(row["through_seq"]), int(row["through_checkpoint"]))
    return SinkLag(name, policy, destination, entries_behind(store, place),
                   row["failing_since"], row["last_error"])  # fmt: skip


def _checked(vault: SinkVault, row: dict[str, Any]) -> AuditSink:
    vault.rows.check("audit_sinks", row)
    try:
        config = config_from_text(row["kind"], row["config"])
        policy = check_policy(row["policy"])
    except (InvalidInputError, ValueError) as e:
        raise TamperedRowError("audit_sinks", row["id"]) from e
    return AuditSink(row["id"], row["name"], policy, config, row["created_at"])

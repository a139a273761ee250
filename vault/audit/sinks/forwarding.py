"""Every entry to every sink: ``block`` sinks inside the commit, ``buffer`` sinks behind it.

- ``send_to_block_sinks`` runs inside each transaction that appended entries,
  just before it commits (the store's before-commit hook, which ``Gateway``
  sets).  It sends each block sink everything after its place and moves the
  place in the same transaction.  A sink that does not take them raises
  ``AuditSinkUnavailableError``: the transaction rolls back and the change is
  not made (fail closed).  If the commit itself then fails, the sink holds
  entries the vault does not: ``audit verify --against`` shows them as a fork
  at that entry, which the server's log of the failed commit explains.
- ``deliver_buffered`` sends each buffer sink what it has not taken, in order,
  outside any transaction, and moves its place after each batch it took.  The
  trail is the durable queue: nothing is lost while a sink is down, and the
  lag is the number of entries after its place (``sink_lags``).  In a cluster
  one member at a time does it, holding the lease ``audit.sinks``.

Neither writes an audit entry (which would feed itself); a buffer sink's
outage is in the place's row (``failing_since``, ``last_error``), in
``status``, and in the server's log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from agent_keys.errors import KeyBackendError
from vault.access.row_seal import TamperedRowError
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.registry import TARGET, AuditSink, configured_sinks
from vault.audit.sinks.stream import Place, entries_behind, move_place, next_batch, place_of
from vault.audit.sinks.transports import transport_for
from vault.cluster.lease import Lease, acquire, check_fence
from vault.gateway import Gateway
from vault.store.vault_store import VaultStore

LEASE = "audit.sinks"
LEASE_TTL_MS = 60_000
MAX_BATCHES = 20
"""Batches per sink per pass (a pass is repeated every few seconds)."""
_MAX_ERROR_CHARS = 300

log = logging.getLogger("gwvault.audit")


def send_to_block_sinks(gateway: Gateway) -> None:
    """The before-commit hook: every block sink takes this transaction's entries
    or the transaction fails (``AuditSinkUnavailableError``)."""
    store = gateway.store
    if not _ever_had_sinks(gateway):
        return
    try:
        sinks = configured_sinks(gateway)
    except KeyBackendError:
        # The keystore is what failed (an unlock refused and recorded without a
        # MAC): the entries go to the sinks with the next commit that has keys.
        return
    for sink in sinks:
        if sink.policy != "block":
            continue
        place = _place(gateway, sink)
        while not (batch := next_batch(store, gateway.gateway_id, place)).empty:
            try:
                transport_for(sink).send(batch.records)
            except AuditSinkUnavailableError as e:
                log.error("audit sink %s (block) refused this change: %s", sink.name, e)
                raise AuditSinkUnavailableError(
                    f"the audit sink {sink.name} (policy block) cannot take the audit entries of"
                    f" this change, so nothing was changed: {e}"
                ) from e
            move_place(store, sink.id, batch.place, gateway.context.now_iso())
            place = batch.place


@dataclass
class BufferedReport:
    sent: dict[str, int] = field(default_factory=dict)  # sink name: entries sent this pass
    failing: dict[str, str] = field(default_factory=dict)  # sink name: why not


def deliver_buffered(gateway: Gateway) -> BufferedReport:
    """One pass over the buffer sinks (``LeaseLostError`` in a cluster while
    another member delivers)."""
    report = BufferedReport()
    store = gateway.store
    if not _ever_had_sinks(gateway):
        return report
    lease = None
    if gateway.member_id is not None:
        gateway.check_standing()
        lease = acquire(store, LEASE, gateway.member_id, LEASE_TTL_MS)
    with store.reading():
        sinks = [sink for sink in configured_sinks(gateway) if sink.policy == "buffer"]
    for sink in sinks:
        sent = 0
        for _ in range(MAX_BATCHES):
            with store.reading():
                place = _place(gateway, sink)
                batch = next_batch(store, gateway.gateway_id, place)
            if batch.empty:
                break
            try:
                transport_for(sink).send(batch.records)
            except AuditSinkUnavailableError as e:
                _record_failure(gateway, sink, str(e), lease)
                report.failing[sink.name] = str(e)
                log.warning("audit sink %s (buffer) is behind: %s", sink.name, e)
                break
            if not _moved(gateway, sink, place, batch.place, lease):
                break  # another process sent it meanwhile: the next pass goes on
            sent += batch.entries
        if sent:
            report.sent[sink.name] = sent
    return report


@dataclass(frozen=True)
class SinkLag:
    name: str
    policy: str
    destination: str
    behind: int  # entries not yet sent
    failing_since: str | None
    last_error: str | None


def sink_lags(gateway: Gateway, *, checked: bool = True) -> list[SinkLag]:
    """Each sink and how far behind the trail it is (for status, doctor, metrics).

    ``checked=False`` reads the rows without their seals, for a ``status`` that
    unlocks nothing (it says so); everything that acts on a sink checks them.
    """
    store = gateway.store
    if not _ever_had_sinks(gateway):
        return []
    with store.reading():
        if checked:
            sinks = [(s.id, s.name, s.policy, s.destination) for s in configured_sinks(gateway)]
        else:
            sinks = [
                (row["id"], row["name"], row["policy"], row["kind"])
                for row in store.rows("SELECT id, name, policy, kind FROM audit_sinks", [])
            ]
        lags = [_lag(store, *sink) for sink in sorted(sinks, key=lambda s: s[1])]
    return lags


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


def _ever_had_sinks(gateway: Gateway) -> bool:
    """Whether any sink was ever added: cheap, and needs no key, so a vault
    that never had one (most) pays two index probes per commit.  A row alone
    with no entry for it is a planted one and goes through the full check."""
    store = gateway.store
    return bool(
        store.rows("SELECT 1 FROM audit_sinks LIMIT 1", [])
        or store.rows("SELECT 1 FROM audit_events WHERE target = ? LIMIT 1", [TARGET])
    )


def _place(gateway: Gateway, sink: AuditSink) -> Place:
    place = place_of(gateway.store, sink.id)
    if place is None:  # a sink's place goes only with its row
        raise TamperedRowError("audit_sink_places", sink.id)
    return place


def _moved(gateway: Gateway, sink: AuditSink, was: Place, now: Place, lease: Lease | None) -> bool:
    """Move the place from ``was`` to ``now`` unless someone else moved it first."""
    store = gateway.store
    with store.write():
        if lease is not None:
            check_fence(store, lease, LEASE_TTL_MS)
        if place_of(store, sink.id) != was:
            return False
        move_place(store, sink.id, now, gateway.context.now_iso())
        return True


def _record_failure(gateway: Gateway, sink: AuditSink, error: str, lease: Lease | None) -> None:
    store = gateway.store
    with store.write():
        if lease is not None:
            check_fence(store, lease, LEASE_TTL_MS)
        store.execute(
            "UPDATE audit_sink_places SET failing_since = coalesce(failing_since, ?),"
            " last_error = ? WHERE sink_id = ?",
            [gateway.context.now_iso(), error[:_MAX_ERROR_CHARS], sink.id],
        )

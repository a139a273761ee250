"""The ``buffer`` sinks: sent what they have not taken, behind the commits.

``deliver_buffered`` sends each buffer sink what it has not taken, in order,
outside any transaction, and moves its place after each batch it took.  The
trail is the durable queue: nothing is lost while a sink is down, and the lag
is the number of entries after its place (``standing.sink_lags``).  In a
cluster one member at a time does it, holding the lease ``audit.sinks``.  An
outage is recorded in the place's row (``failing_since``, ``last_error``),
shown by ``status``, and logged; never as an audit entry, which would feed
itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.standing import AuditSink, checked_place, configured_sinks, ever_had_sinks
from vault.audit.sinks.stream import Place, mark_failing, move_place, next_batch, place_of
from vault.audit.sinks.transports import transport_for
from vault.cluster.lease import Lease, acquire, check_fence
from vault.gateway import Gateway
from vault.proxy.loading import load_proxy

LEASE = "audit.sinks"
LEASE_TTL_MS = 60_000
MAX_BATCHES = 20
"""Batches per sink per pass (a pass is repeated every few seconds)."""

log = logging.getLogger("gwvault.audit")


@dataclass
class BufferedReport:
    sent: dict[str, int] = field(default_factory=dict)  # sink name: entries sent this pass
    failing: dict[str, str] = field(default_factory=dict)  # sink name: why not


def deliver_buffered(gateway: Gateway) -> BufferedReport:
    """One pass over the buffer sinks (``LeaseLostError`` in a cluster while
    another member delivers)."""
    report = BufferedReport()
    store = gateway.store
    if not ever_had_sinks(store):
        return report
    lease = None
    if gateway.member_id is not None:
        gateway.check_standing()
        lease = acquire(store, LEASE, gateway.member_id, LEASE_TTL_MS)
    with store.reading():
        sinks = [sink for sink in configured_sinks(gateway) if sink.policy == "buffer"]
        proxy = load_proxy(gateway)
    for sink in sinks:
        sent = 0
        for _ in range(MAX_BATCHES):
            with store.reading():
                place = checked_place(store, sink)
                batch = next_batch(store, gateway.gateway_id, place)
            if batch.empty:
                break
            try:
                transport_for(sink, proxy).send(batch.records)
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
        mark_failing(store, sink.id, gateway.context.now_iso(), error)

"""Every entry to the ``block`` sinks, inside the commit that wrote it.

- ``send_to_block_sinks`` runs inside each transaction that appended entries,
  just before it commits (the store's before-commit hook, which ``Gateway``
  sets).  It sends each block sink everything after its place and moves the
  place in the same transaction.  A sink that does not take them raises
  ``AuditSinkUnavailableError``: the transaction rolls back and the change is
  not made (fail closed).  If the commit itself then fails, the sink holds
  entries the vault does not: ``audit verify --against`` shows them as a fork
  at that entry, which the server's log of the failed commit explains.

The buffer sinks are sent behind the commits (``vault.audit.sinks.delivery``).
The hook writes no audit entry (which would feed itself).  It builds on the
vault's parts, not on ``Gateway``, which sets it on each store it opens.
"""

from __future__ import annotations

import functools
import logging

from agent_keys.errors import KeyBackendError
from vault.audit.sinks.errors import AuditSinkUnavailableError
from vault.audit.sinks.standing import SinkVault, checked_place, configured_sinks, ever_had_sinks
from vault.audit.sinks.stream import mark_failing, move_place, next_batch
from vault.audit.sinks.transports import transport_for
from vault.proxy.loading import load_proxy
from vault.store.vault_store import VaultStore

log = logging.getLogger("gwvault.audit")


def send_to_block_sinks(vault: SinkVault) -> None:
    """The before-commit hook: every block sink takes this transaction's entries
    or the transaction fails (``AuditSinkUnavailableError``)."""
    store = vault.store
    if not ever_had_sinks(store):
        return
    try:
        sinks = configured_sinks(vault)
    except KeyBackendError:
        # The keystore is what failed (an unlock refused and recorded without a
        # MAC): the entries go to the sinks with the next commit that has keys.
        return
    block = [sink for sink in sinks if sink.policy == "block"]
    if not block:
        return
    proxy = load_proxy(vault)
    for sink in block:
        place = checked_place(store, sink)
        while not (batch := next_batch(store, vault.gateway_id, place)).empty:
            try:
                transport_for(sink, proxy).send(batch.records)
            except AuditSinkUnavailableError as e:
                log.error("audit sink %s (block) refused this change: %s", sink.name, e)
                # Kept once the change has rolled back: status and doctor show the outage.
                store.after_rollback(
                    functools.partial(
                        _note_failing, store, sink.id, vault.context.now_iso(), str(e)
                    )
                )
                raise AuditSinkUnavailableError(
                    f"the audit sink {sink.name} (policy block) cannot take the audit entries of"
                    f" this change, so nothing was changed: {e}"
                ) from e
            move_place(store, sink.id, batch.place, vault.context.now_iso())
            place = batch.place


def _note_failing(store: VaultStore, sink_id: str, at: str, error: str) -> None:
    with store.write():
        mark_failing(store, sink_id, at, error)

"""Audit entries of concurrent callers written in one durable transaction.

The agent hands out a secret only once the entry recording its use is
committed durably (synchronous=FULL: the log is synced at each commit).  One
sync per use bounds a busy agent by the disk's sync time; instead the
callers that arrive while a commit is under way wait, and the next of them
writes all their entries in one transaction, one sync (a leader/follower
group commit, as databases do for their own logs).

Each caller returns only after the transaction holding its entry committed;
if that transaction fails (a full disk, a refused write, a failed commit),
it rolls back and every caller of the batch gets the error: none of them
gets a secret, and none of their entries stands.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from vault.audit.trail import DetailValue
from vault.context import RequestContext
from vault.gateway import Gateway


@dataclass
class _Pending:
    """One caller's entry, and what became of its batch."""

    context: RequestContext
    action: str
    target: str
    details: dict[str, DetailValue]
    done: bool = False
    error: BaseException | None = field(default=None, repr=False)


class GroupCommit:
    """Batches audit entries of concurrent callers of one process into shared commits."""

    def __init__(self, writer: Callable[[], Gateway]) -> None:
        # ``writer`` gives the calling thread's own opened vault: the leader of
        # a batch writes on its connection.
        self._writer = writer
        self._changed = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def record(
        self, context: RequestContext, action: str, target: str, details: dict[str, DetailValue]
    ) -> None:
        """Append the entry as ``context`` and return once it is committed.

        Raises the batch's error (``StorageError`` and the like) when the
        transaction holding it did not commit; the entry is then not written.
        """
        pending = _Pending(context, action, target, details)
        batch: list[_Pending] = []
        with self._changed:
            self._queue.append(pending)
            while self._writing and not pending.done:
                self._changed.wait()
            if not pending.done:  # no batch is being written: lead the next one
                self._writing = True
                batch, self._queue = self._queue, []
        if batch:
            self._lead(batch)
        if pending.error is not None:
            raise pending.error

    def _lead(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        try:
            self._write(batch)
        except BaseException as e:  # every caller of the batch is told, the leader too
            error = e
        with self._changed:
            for pending in batch:
                pending.done, pending.error = True, error
            self._writing = False
            self._changed.notify_all()

    def _write(self, batch: list[_Pending]) -> None:
        # One gateway object for the batch: what it unwraps lasts this batch.
        gateway = self._writer().acting_as(batch[0].context)
        # The current GMK as last checked, before the write: the audit key is
        # unwrapped by its own row's GMK version, so a rotation committed just
        # before costs an unwrap through the keystore, never a wrong key.
        gateway.master_key  # noqa: B018 - fills the cached property
        with gateway.store.write():  # one transaction, one durable commit
            for pending in batch:
                gateway.audit.acting_as(pending.context).record(
                    pending.action, pending.target, "ok", **pending.details
                )

"""One opened vault per thread of a long-lived process, kept across requests.

Opening the vault (the data dir and file checks, the keystore binding, a new
SQLite connection) cost about half of a web request; ``gwvault serve`` and a
long-lived agent keep one opened ``Gateway`` per worker thread instead, made
the first time the thread needs it and used by that thread only.  Each use
gets it acting as that use's caller (``Gateway.acting_as``).

* A connection never crosses a fork: a thread in a child process (the server
  forks its workers) finds its pid changed and opens its own.  The inherited
  one is never used and never closed in the child, since closing it there
  could disturb the parent's locks and log.
* After a use, ``release`` rolls back any transaction the use left open (one
  that raised mid-write), so nothing half-done reaches the next use.
* Before a use, the database path must still name the file the connection
  opened, still private; otherwise (a restore replaced it, its mode was
  widened) the vault is opened again, with every check of ``Gateway.open``.
* The checked facts (``vault.gateway_facts``) are shared by the threads of a
  process and hold while the vault's facts generation does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from agent_keys.errors import StorageError
from vault.context import RequestContext
from vault.forks import reset_in_child
from vault.gateway import Gateway
from vault.gateway_facts import GatewayFacts

OpenGateway = Callable[[RequestContext, GatewayFacts], Gateway]
"""Opens the vault for a thread (``Gateway.open`` with the process's unlock)."""

# Connections a child process inherited from its parent: kept referenced so
# that garbage collection never closes them in the child.
_INHERITED: list[Gateway] = []


@dataclass(frozen=True)
class _Kept:
    gateway: Gateway
    pid: int


class KeptGateways:
    """The per-thread opened vaults of one process (one data dir, one unlock)."""

    def __init__(self, open_gateway: OpenGateway, context: RequestContext) -> None:
        self._open = open_gateway
        self._context = context  # the context a thread's vault is opened in
        self._local = threading.local()
        self._facts = GatewayFacts()
        self._all: dict[int, Gateway] = {}  # by thread id, for close()
        self._lock = threading.Lock()
        reset_in_child(self, KeptGateways._after_fork)

    def gateway(self, context: RequestContext) -> Gateway:
        """This thread's kept vault, acting as ``context`` (opened if need be).

        Raises what ``Gateway.open`` raises when the vault must be (re)opened.
        """
        gateway = self.kept().acting_as(context)
        # A cluster member removed, disabled or left behind by a restore stops
        # at its next use (re-read only when the vault's facts change).
        gateway.check_standing()
        return gateway

    def kept(self) -> Gateway:
        """This thread's kept vault itself, in the context it was opened in."""
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is not None and kept.pid != os.getpid():
            kept = None  # the parent's connection (``_after_fork`` kept it)
        if kept is not None and not kept.gateway.store.is_opened_file():
            self._drop(kept.gateway)
            self._facts.forget()  # facts of the file that was replaced
            kept = None
        if kept is None:
            opened = self._open(self._context, self._facts)
            try:
                # Read once per connection (a file's gateway id never changes;
                # a replaced file is a new connection), then copied by acting_as.
                opened.gateway_id  # noqa: B018 - fills the cached property
            except BaseException:
                opened.close()
                raise
            kept = _Kept(opened, os.getpid())
            self._local.kept = kept
            self._register(kept.gateway)
        return kept.gateway

    def release(self) -> None:
        """End this thread's use: roll back a transaction the use left open.

        A connection that cannot even roll back is closed, and the next use
        opens the vault again; the use itself is over, so that is no error of
        its (closing the connection rolls its transaction back).
        """
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None or kept.pid != os.getpid():
            return
        try:
            kept.gateway.store.end_transaction()
        except StorageError:
            self._drop(kept.gateway)

    def close(self) -> None:
        """Close every thread's kept vault of this process (at shutdown, when
        no thread uses them any more)."""
        with self._lock:
            opened, self._all = list(self._all.values()), {}
        for gateway in opened:
            gateway.close()
        self._local = threading.local()

    def _register(self, gateway: Gateway) -> None:
        # A thread that ended left its vault here only: close it (a server
        # whose pool replaces threads would otherwise gather connections).
        # An entry under this thread's own id is an ended thread's (ids are reused).
        alive = {thread.ident for thread in threading.enumerate()} - {threading.get_ident()}
        with self._lock:
            ended = [ident for ident in self._all if ident not in alive]
            left = [self._all.pop(ident) for ident in ended]
            self._all[threading.get_ident()] = gateway
        for gateway_of_ended in left:
            gateway_of_ended.close()

    def _drop(self, gateway: Gateway) -> None:
        self._local.kept = None
        with self._lock:
            self._all.pop(threading.get_ident(), None)
        gateway.close()

    def _after_fork(self) -> None:
        # In the child, before any of its threads runs: the parent's
        # connections are not this process's to use or close, and a lock held
        # by a parent thread at the fork would never be released here.
        self._lock = threading.Lock()
        _INHERITED.extend(self._all.values())
        self._all = {}
        self._facts = GatewayFacts()

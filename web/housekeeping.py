"""The endpoint's background work, beside serving requests.

- Every worker writes the counts of its rate-limited anonymous audit events
  (``vault.audit.coalesce``: counted per process) every ``FLUSH_SECONDS`` and
  when it stops.
- The housekeeper, a process of its own (``web.server.workers``), checks the
  whole audit trail at start and every ``FULL_CHECK_SECONDS``, moving the
  verified-through mark the page and API start from (``vault.audit.incremental``).
  At a million entries that takes seconds of CPU: in a worker it would hold the
  GIL its requests need.

Each run opens the vault for itself with the GMK the server unlocked, and a
failure is logged (a ``VaultError``'s message, written for people and never
holding a secret) and tried again next period: background work never stops
the endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from agent_keys.errors import VaultError
from vault.audit import background
from vault.context import RequestContext
from vault.gateway import Gateway
from web.access import VaultHandle

log = logging.getLogger("gwvault.server")

FLUSH_SECONDS = 30.0
FULL_CHECK_SECONDS = 6 * 3600.0
ACTOR = "gwvault:serve"


def _run(handle: VaultHandle, job: Callable[[Gateway], object], what: str) -> None:
    context = RequestContext(actor=ACTOR, channel="web")
    try:
        with Gateway.open(handle.data_dir, context, unlocked=handle.master_key) as gateway:
            job(gateway)
    except VaultError as e:
        log.error("%s failed: %s", what, e)


@contextlib.contextmanager
def flushing_anonymous_events(handle: VaultHandle) -> Iterator[None]:
    """Around a worker's serving: flush periodically, and everything at the end."""
    stop = threading.Event()

    def flush_until_stopped() -> None:
        while not stop.wait(FLUSH_SECONDS):
            _run(handle, background.flush, "writing coalesced audit events")

    thread = threading.Thread(target=flush_until_stopped, name="gwvault-flush", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        _run(
            handle,
            lambda gateway: background.flush(gateway, final=True),
            "writing coalesced audit events",
        )


@contextlib.contextmanager
def worker_life(handle: VaultHandle) -> Iterator[None]:
    """Around a worker's serving: its flushes, then its threads' kept vaults closed
    (a clean close checkpoints SQLite's log; the worker ends with ``os._exit``)."""
    try:
        with flushing_anonymous_events(handle):
            yield
    finally:
        handle.close()


def audit_housekeeper(handle: VaultHandle) -> Callable[[threading.Event], None]:
    """The housekeeper's loop: a full audit check now and every period, until stopped."""

    def check_until_stopped(stop: threading.Event) -> None:
        while True:
            _run(handle, _check_and_log, "the periodic full audit check")
            if stop.wait(FULL_CHECK_SECONDS):
                return

    return check_until_stopped


def _check_and_log(gateway: Gateway) -> None:
    report = background.full_check_and_mark(gateway)
    level = logging.INFO if report.ok else logging.ERROR
    log.log(level, "audit full check: %s", report.summary())

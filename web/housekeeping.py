"""The endpoint's background work, beside serving requests.

- Every worker writes the counts of its rate-limited anonymous audit events
  (``vault.audit.coalesce``: counted per process) every ``FLUSH_SECONDS`` and
  when it stops.
- The housekeeper, a process of its own (``web.server.workers``), checks the
  whole audit trail at start and every ``FULL_CHECK_SECONDS``, moving the
  verified-through mark the page and API start from (``vault.audit.incremental``).
  At a million entries that takes seconds of CPU: in a worker it would hold the
  GIL its requests need.  In a cluster one member does it, the one holding its
  lease (``vault.audit.background``); every member's housekeeper also records
  the member's heartbeat every ``HEARTBEAT_SECONDS`` (``vault.cluster.heartbeat``).
- The housekeeper also purges the deleted credentials whose retention window
  has passed, at start and every ``PURGE_SECONDS`` (``vault.credential_purge``;
  in a cluster one member, holding its lease).
- Beside these, on a thread of its own (a slow webhook must not delay a
  heartbeat), the housekeeper delivers queued notifications every
  ``NOTIFY_SECONDS`` (``vault.notify.delivery``; in a cluster the member
  holding its lease).
- On another thread of its own, every ``SINK_SECONDS``, it sends the
  ``buffer`` audit sinks what they have not taken yet (``vault.audit.sinks``;
  in a cluster the member holding its lease).  ``block`` sinks need no
  housekeeper: each commit sends them its entries itself.
- The housekeeper also runs the scheduled health checks of the credentials
  (``vault.health.checks``), in a thread of its own, every ``HEALTH_TICK_SECONDS``;
  in a cluster the member holding their lease does.

Each run opens the vault for itself with the GMK the server unlocked, and a
failure is logged (a ``VaultError``'s message, written for people and never
holding a secret) and tried again next period: background work never stops
the endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from agent_keys.errors import VaultError
from vault.audit import background
from vault.audit.sinks.delivery import deliver_buffered
from vault.cluster.heartbeat import record_heartbeat
from vault.cluster.lease import LeaseLostError
from vault.context import RequestContext
from vault.credential_purge import purge_expired_credentials
from vault.data_dir import DataDir
from vault.gateway import Gateway
from vault.health.checks import tick
from vault.notify.delivery import deliver_due
from web.access import VaultHandle

log = logging.getLogger("gwvault.server")

FLUSH_SECONDS = 30.0
FULL_CHECK_SECONDS = 6 * 3600.0
HEARTBEAT_SECONDS = 10.0
NOTIFY_SECONDS = 15.0
SINK_SECONDS = 5.0  # how long a buffer sink that is up may lag behind the trail
# A deleted credential outlives its purge_after by at most this long.
PURGE_SECONDS = 3600.0
HEALTH_TICK_SECONDS = 60.0  # how often due credentials are looked for (each has its own time)
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
    """The housekeeper's loop until stopped: a full audit check now and every
    period, the purge of expired deleted credentials now and every
    ``PURGE_SECONDS``, and a cluster member's heartbeat now and every ``HEARTBEAT_SECONDS``.
    A single machine only checks (it has no member row to beat in)."""
    member = DataDir(handle.data_dir).cluster_file.exists()

    def keep_house(stop: threading.Event) -> None:
        checks = threading.Thread(
            target=check_credentials_until_stopped, args=(handle, stop),
            name="gwvault-health", daemon=True,
        )  # fmt: skip
        checks.start()
        check_due = purge_due = time.monotonic()
        while True:
            if member:
                _run(handle, record_heartbeat, "the member heartbeat")
            if time.monotonic() >= check_due:
                # A failed check waits for the next period too: a trail that
                # does not verify must not fill the log every few seconds.
                check_due = time.monotonic() + FULL_CHECK_SECONDS
                _run(handle, _check_and_log, "the periodic full audit check")
            if time.monotonic() >= purge_due:
                purge_due = time.monotonic() + PURGE_SECONDS
                _run(handle, _purge_and_log, "the purge of expired deleted credentials")
            until_next = max(0.0, min(check_due, purge_due) - time.monotonic())
            if stop.wait(min(HEARTBEAT_SECONDS, until_next) if member else until_next):
                return

    return keep_house


def check_credentials_until_stopped(handle: VaultHandle, stop: threading.Event) -> None:
    """The scheduled health checks (``vault.health.checks.tick``) every
    ``HEALTH_TICK_SECONDS``, from one period after the start (a server that is
    started and stopped at once tests nothing), in a thread of their own: a run
    over many credentials takes minutes and must not hold up the heartbeat."""
    while not stop.wait(HEALTH_TICK_SECONDS):
        _run(handle, _tick_and_log, "the scheduled credential checks")


def _tick_and_log(gateway: Gateway) -> None:
    try:
        outcomes = tick(gateway)
    except LeaseLostError as e:
        log.info("credential checks: not this member's turn; %s", e)
        return
    if outcomes:
        failed = sum(1 for outcome in outcomes if not outcome.ok)
        log.info("credential checks: tested %d, %d not ok", len(outcomes), failed)


def _check_and_log(gateway: Gateway) -> None:
    try:
        report = background.leased_full_check(gateway, int(FULL_CHECK_SECONDS * 1000))
    except LeaseLostError as e:
        log.info("audit full check: not this member's turn; %s", e)
        return
    level = logging.INFO if report.ok else logging.ERROR
    log.log(level, "audit full check: %s", report.summary())


def notification_deliverer(handle: VaultHandle) -> Callable[[threading.Event], None]:
    """Deliver the queued notifications now and every ``NOTIFY_SECONDS`` until stopped."""

    def deliver(stop: threading.Event) -> None:
        while True:
            _run(handle, _deliver_and_log, "delivering notifications")
            if stop.wait(NOTIFY_SECONDS):
                return

    return deliver


def audit_sink_sender(handle: VaultHandle) -> Callable[[threading.Event], None]:
    """Send the buffer audit sinks their backlog now and every ``SINK_SECONDS`` until stopped."""

    def send(stop: threading.Event) -> None:
        while True:
            _run(handle, _send_to_sinks_and_log, "sending to the buffer audit sinks")
            if stop.wait(SINK_SECONDS):
                return

    return send


def _send_to_sinks_and_log(gateway: Gateway) -> None:
    try:
        report = deliver_buffered(gateway)
    except LeaseLostError as e:
        log.debug("audit sinks: not this member's turn; %s", e)
        return
    for name, count in sorted(report.sent.items()):
        log.info("audit sink %s: sent %d entries", name, count)


def alongside(
    main: Callable[[threading.Event], None], beside: Callable[[threading.Event], None]
) -> Callable[[threading.Event], None]:
    """``main`` in the calling thread and ``beside`` on a thread of its own, both
    until stopped (the housekeeper's two loops)."""

    def both(stop: threading.Event) -> None:
        thread = threading.Thread(target=beside, args=(stop,), name="gwvault-beside", daemon=True)
        thread.start()
        try:
            main(stop)
        finally:
            stop.set()
            thread.join(timeout=10)

    return both


def _deliver_and_log(gateway: Gateway) -> None:
    try:
        report = deliver_due(gateway)
    except LeaseLostError as e:
        log.debug("notifications: not this member's turn; %s", e)
        return
    if report.delivered or report.retrying or report.failed:
        log.info("notifications: delivered %d, retrying %d, failed %d", report.delivered,
                 report.retrying, report.failed)  # fmt: skip
    for error in report.errors:
        log.error("notifications: %s", error)


def _purge_and_log(gateway: Gateway) -> None:
    try:
        purged = purge_expired_credentials(gateway, int(PURGE_SECONDS * 1000))
    except LeaseLostError as e:
        log.info("credential purge: not this member's turn; %s", e)
        return
    if purged:
        log.info("credential purge: purged %s (retention window passed)", ", ".join(purged))

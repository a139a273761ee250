"""Testing many credentials at once: the scheduler's tick and ``credentials test --all``.

The calling thread alone touches the vault: it decides and opens each test
(``CredentialService.prepare_test``, a short transaction), hands the test
itself to a pool of ``concurrency`` threads that do network I/O and nothing
else, and records each result as it comes back (``record_test``, a write of
its own that checks the rows again).  No transaction, and so no write lock, is
held while a test runs; at most ``concurrency`` tests run, and at most that
many opened secrets are held, whatever the number of credentials.

A scheduled test goes where the credential's creator could test it: the
admin's destination policy (``gwvault destinations``), never the unrestricted
one, so a creator cannot use the schedule to probe hosts it may not reach.
``credentials test --all`` by the local operator tests anywhere, as
``credentials test`` does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from agent_keys.errors import VaultError
from vault.access.row_seal import TamperedRowError
from vault.cluster.lease import Lease, acquire, fenced
from vault.connectors.connection import SUMMARIES, ConnectionTestResult, ReasonCode
from vault.credentials import CredentialService, PreparedTest
from vault.gateway import Gateway
from vault.health.run_request import requested_since
from vault.health.settings import TEST_DEADLINE_SECONDS, load_health_settings
from vault.health.status import Trigger, is_due, record_test, statuses
from vault.notify.due_events import raise_due_events
from vault.store.records import CredentialRecord

LEASE = "health.checks"
"""Taken for ``DEFAULT_TTL_MS`` and renewed by every recorded result, which
come far more often than that (each test has a deadline of seconds)."""


@dataclass(frozen=True)
class CheckOutcome:
    """One credential's test in a run, as recorded."""

    name: str
    reason: ReasonCode | None  # None: not tested (see ``problem``)
    detail: str
    server_expires_at: str | None
    seconds: float
    problem: str | None = None  # why it was not tested (disabled meanwhile, a refused row)

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    def view(self, *, admin: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "name": self.name, "result": self.reason,
            "result_summary": SUMMARIES[self.reason] if self.reason else self.problem,
            "server_expires_at": self.server_expires_at, "seconds": round(self.seconds, 3),
        }  # fmt: skip
        if admin:
            shown["result_detail"] = self.detail
        return shown


def due_names(gateway: Gateway) -> list[str]:
    """The enabled credentials whose next test's time has come (never tested first)."""
    now, requested = gateway.context.clock(), requested_since(gateway)
    records = _enabled(gateway)
    found = statuses(gateway, records)
    due = [(found[r.binding.credential_id], r.name) for r in records]
    due = [(status, name) for status, name in due if is_due(status, now, requested)]
    due.sort(key=lambda pair: ("" if pair[0] is None else pair[0].next_due_at, pair[1]))
    return [name for _, name in due]


def enabled_names(gateway: Gateway) -> list[str]:
    return [record.name for record in _enabled(gateway)]


def _enabled(gateway: Gateway) -> list[CredentialRecord]:
    """The credentials neither disabled nor deleted whose rows' seals hold; a
    refused row (recorded) is left out, so one tampered row stops no other check."""
    enabled: list[CredentialRecord] = []
    for record in gateway.store.credentials():
        try:
            gateway.rows.check("credentials", record.sealed_row())
        except TamperedRowError:
            continue
        if record.state == "active":
            enabled.append(record)
    return enabled


def run_checks(
    gateway: Gateway,
    service: CredentialService,
    names: list[str],
    trigger: Trigger,
    *,
    any_destination: bool,
    concurrency: int,
    deadline_seconds: float = TEST_DEADLINE_SECONDS,
    step: Callable[[], AbstractContextManager[None]] | None = None,
) -> list[CheckOutcome]:
    """Test ``names`` with at most ``concurrency`` at once; every result recorded."""
    outcomes: list[CheckOutcome] = []
    queue = iter(names)
    running: dict[Future[ConnectionTestResult], tuple[PreparedTest, float]] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gwvault-check") as pool:
        while True:
            while len(running) < concurrency and (name := next(queue, None)) is not None:
                try:
                    prepared = service.prepare_test(name, any_destination=any_destination)
                except VaultError as e:  # disabled, deleted or refused since it was listed
                    outcomes.append(CheckOutcome(name, None, str(e), None, 0.0, str(e)))
                    continue
                running[pool.submit(prepared.run, deadline_seconds)] = (prepared, time.monotonic())
            if not running:
                return outcomes
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                prepared, started = running.pop(future)
                seconds = time.monotonic() - started
                outcomes.append(
                    _recorded(gateway, prepared, future, trigger, seconds=seconds, step=step)
                )


def _recorded(
    gateway: Gateway,
    prepared: PreparedTest,
    future: Future[ConnectionTestResult],
    trigger: Trigger,
    *,
    seconds: float,
    step: Callable[[], AbstractContextManager[None]] | None,
) -> CheckOutcome:
    name = prepared.record.name
    try:
        result = future.result()
    except VaultError as e:  # input the store should never have held: not a test result
        return CheckOutcome(name, None, str(e), None, seconds, str(e))
    recorded = record_test(gateway, prepared.record, result, trigger, step=step)
    return CheckOutcome(name, recorded.reason, recorded.detail, recorded.server_expires_at, seconds)


def test_all(gateway: Gateway, service: CredentialService) -> list[CheckOutcome]:
    """``credentials test --all``: every enabled credential now, within the bound."""
    concurrency = load_health_settings(gateway).concurrency
    return run_checks(
        gateway, service, enabled_names(gateway), "manual",
        any_destination=True, concurrency=concurrency,
    )  # fmt: skip


# pytest would collect an imported ``test_*`` function as a test; it is not one.
test_all.__test__ = False  # type: ignore[attr-defined]


def tick(gateway: Gateway) -> list[CheckOutcome]:
    """One run of the scheduler: the due credentials tested and recorded, then
    the owner's dates' warnings raised (``vault.notify.due_events``).  In a
    cluster only the holder of the lease ``health.checks`` runs it, and each
    result is recorded in a fenced step (``LeaseLostError`` when another member
    took over: the rest is its work).

    Raises ``LeaseLostError`` while another member holds the lease,
    ``MemberStoppedError`` for a member that may not serve.
    """
    gateway.check_standing()
    with _leased(gateway) as step:
        settings = load_health_settings(gateway)
        outcomes = run_checks(
            gateway, CredentialService(gateway), due_names(gateway), "scheduled",
            any_destination=False, concurrency=settings.concurrency, step=step,
        )  # fmt: skip
    # The owner's dates: expiring, expired, rotation due (one write each, so
    # two members' runs do not raise one warning twice).
    raise_due_events(gateway, gateway.context.clock())
    # The purge of deleted credentials has its own period and lease
    # (vault.credential_purge): the housekeeper and `gwvault scheduler` run it.
    return outcomes


@contextlib.contextmanager
def _leased(
    gateway: Gateway,
) -> Iterator[Callable[[], AbstractContextManager[None]] | None]:
    """The fenced write of each step in a cluster (None on a single machine)."""
    if gateway.member_id is None:
        yield None
        return
    lease: Lease = acquire(gateway.store, LEASE, gateway.member_id)
    yield lambda: fenced(gateway.store, lease)

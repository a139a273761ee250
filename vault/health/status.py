"""Each stored credential's health: the outcome of its last test, kept and checked.

Every test of a stored credential, manual or scheduled, ends here
(``record_test``): in one write, the credential's status row is read again and
checked, the ``credential.tested`` entry is written, the row is replaced
(sealed) and, when the reason differs from the last one, the event
``credential.status-changed`` is raised.  No test runs inside that write: the
caller tested before, holding nothing (a test takes seconds).

A status row is sealed (``vault.access.row_seal``) and checked against the
newest ``credential.tested`` entry of a stored credential: a row written
without the key is refused, and so is an older row put back, which could
otherwise hide the next change (an old failure put back makes the next failure
look like no change).  A refused row counts as no status: the credential is
due at once, the refusal is recorded, and its next result is raised as a change
(from "unknown"; a credential's first test is no change).

PostgreSQL refuses a password past its ``VALID UNTIL`` with the same words
as a wrong one.  The status tells the two apart where it has evidence: an
``auth_failed`` after a successful test saw an expiry that has now passed is
``password_expired``.  Without that evidence it stays ``auth_failed``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Literal

from vault.access.row_seal import TamperedRowError, record_refusal
from vault.connectors.connection import SUMMARIES, ConnectionTestResult, ReasonCode
from vault.credential_life import is_past, stored_instant
from vault.format.life_input import instant_text
from vault.gateway import Gateway
from vault.health.schedule import next_due
from vault.health.settings import load_health_settings
from vault.notify.events import raise_event
from vault.store.records import CredentialRecord

Trigger = Literal["manual", "scheduled"]
TABLE = "credential_status"
TESTED = "credential.tested"
_STORED = '"stored":true'  # what a stored credential's test entry holds (canonical JSON)
_COLUMNS = ("credential_id", "name", "version", "tested_at", "reason", "detail",
            "server_expires_at", "next_due_at", "changed_at")  # fmt: skip


@dataclass(frozen=True)
class CredentialStatus:
    """The last test of one stored credential, as its sealed row holds it."""

    credential_id: str
    name: str
    version: int
    tested_at: str
    reason: ReasonCode
    detail: str
    server_expires_at: str | None
    next_due_at: str
    changed_at: str

    def row(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in _COLUMNS}

    def view(self, *, admin: bool) -> dict[str, Any]:
        """What the list and the API show; the driver's words only to an admin."""
        shown: dict[str, Any] = {
            "last_tested_at": self.tested_at, "result": self.reason,
            "result_summary": SUMMARIES[self.reason], "status_changed_at": self.changed_at,
            "server_expires_at": self.server_expires_at, "next_due_at": self.next_due_at,
        }  # fmt: skip
        if admin:
            shown["result_detail"] = self.detail
        return shown


UNTESTED_VIEW: dict[str, Any] = {
    "last_tested_at": None, "result": None, "result_summary": None, "status_changed_at": None,
    "server_expires_at": None, "next_due_at": None,
}  # fmt: skip
"""The view of a credential never tested (due at the scheduler's next run)."""


def status_view(status: CredentialStatus | None, *, admin: bool) -> dict[str, Any]:
    return status.view(admin=admin) if status is not None else dict(UNTESTED_VIEW)


def health_views(
    gateway: Gateway, records: list[CredentialRecord], *, admin: bool
) -> dict[str, dict[str, Any]]:
    """Each credential's status view by name, for a list (page, API, CLI)."""
    found = statuses(gateway, records)
    return {
        record.name: status_view(found[record.binding.credential_id], admin=admin)
        for record in records
    }


def reported_expiries(gateway: Gateway, records: Iterable[CredentialRecord]) -> dict[str, str]:
    """The expiry each credential's server reported (checked status rows), by name;
    a refused row (recorded) reports nothing."""
    found = statuses(gateway, records := list(records))
    return {
        record.name: status.server_expires_at
        for record in records
        if (status := found[record.binding.credential_id]) is not None
        and status.server_expires_at is not None
    }


def health_line(view: dict[str, Any]) -> str:
    """A status view (with the credential's ``state``) in a few words, for a line
    of ``credentials list``: a disabled or deleted credential is not scheduled."""
    last = (
        "never tested"
        if view["result"] is None
        else (f"{view['result']} at {view['last_tested_at']}")
    )
    state = view.get("state", "active")
    if state != "active":
        return f"{last}, not tested while {state}"
    if view["result"] is None:
        return "never tested (due now)"
    return f"{last}, next {view['next_due_at']}"


def read_status(gateway: Gateway, record: CredentialRecord) -> CredentialStatus | None:
    """The checked status of ``record`` (None: never tested); ``TamperedRowError``
    for a row written or put back outside gwvault (recorded unless in a write)."""
    rows = gateway.store.rows(
        f"SELECT {gateway.rows.columns(TABLE)} FROM {TABLE} WHERE credential_id = ?",  # noqa: S608 - fixed names
        [record.binding.credential_id],
    )
    if not rows:
        return None
    status = _checked(gateway, rows[0])
    if status.name != record.name:
        _refuse(gateway, TamperedRowError(TABLE, status.credential_id))
    return status


def statuses(
    gateway: Gateway, records: Iterable[CredentialRecord]
) -> dict[str, CredentialStatus | None]:
    """The checked status of each of ``records`` by credential id; a refused row
    (recorded) counts as none: that credential is due at once."""
    found: dict[str, CredentialStatus | None] = {}
    for record in records:
        try:
            found[record.binding.credential_id] = read_status(gateway, record)
        except TamperedRowError:
            found[record.binding.credential_id] = None
    return found


def is_due(
    status: CredentialStatus | None,
    now: datetime.datetime,
    requested: datetime.datetime | None = None,
) -> bool:
    """Never tested, its next test's time has come, or it was last tested before
    a run was ``requested`` (``vault.health.run_request``)."""
    if status is None:
        return True
    next_due, tested = stored_instant(status.next_due_at), stored_instant(status.tested_at)
    if next_due is None or next_due <= now:  # an unreadable time: tested, not trusted
        return True
    return requested is not None and (tested is None or tested < requested)


def record_test(
    gateway: Gateway,
    record: CredentialRecord,
    result: ConnectionTestResult,
    trigger: Trigger,
    *,
    step: Callable[[], AbstractContextManager[None]] | None = None,
) -> ConnectionTestResult:
    """Record the test of the stored ``record`` and update its status, in one
    write (``step``: the caller's fenced write, in a cluster); returns the
    result as recorded (its reason may be ``password_expired``, see above)."""
    now = gateway.context.clock()
    with (step or gateway.store.write)():
        current = gateway.store.credential(record.name)
        same = current is not None and current.binding.credential_id == record.binding.credential_id
        previous, refused = _previous(gateway, record) if same else (None, None)
        result = _with_evidence(result, previous, now)
        expires = result.server_expires_at
        if not result.ok and previous is not None:
            expires = previous.server_expires_at  # a failed test learns nothing new
        gateway.audit.record(
            TESTED, record.name, _outcome(result.reason), reason=result.reason,
            detail=result.detail, stored=True, trigger=trigger, server_expires_at=expires,
        )  # fmt: skip
        if refused is not None:
            record_refusal(gateway.audit, refused)
        if not same:
            return result  # deleted or replaced while it was tested: no status to keep
        changed = previous is None or previous.reason != result.reason
        credential_id = record.binding.credential_id
        every = load_health_settings(gateway).every_seconds
        status = CredentialStatus(
            credential_id, record.name, record.binding.version, instant_text(now), result.reason,
            result.detail, expires, next_due(credential_id, now, every),
            instant_text(now) if previous is None or changed else previous.changed_at,
        )  # fmt: skip
        _save(gateway, status)
        # A first test is no change; after a refused row, any result is raised.
        if changed and (previous is not None or refused is not None):
            raise_event(
                gateway, "credential.status-changed", record.name,
                old_reason=previous.reason if previous is not None else "unknown",
                new_reason=result.reason, trigger=trigger,
            )  # fmt: skip
    return replace(result, server_expires_at=expires)


def _previous(
    gateway: Gateway, record: CredentialRecord
) -> tuple[CredentialStatus | None, TamperedRowError | None]:
    try:
        return read_status(gateway, record), None
    except TamperedRowError as refused:
        return None, refused


def _with_evidence(
    result: ConnectionTestResult, previous: CredentialStatus | None, now: datetime.datetime
) -> ConnectionTestResult:
    """``auth_failed`` after the server itself said the login expires by now:
    ``password_expired`` (PostgreSQL says no more than for a wrong password)."""
    if result.reason != "auth_failed" or previous is None:
        return result
    if not is_past(previous.server_expires_at, now):
        return result
    return replace(
        result,
        reason="password_expired",
        detail=f"{result.detail} (the server said this login expires at"
        f" {previous.server_expires_at}, which has passed)",
    )


def _checked(gateway: Gateway, row: dict[str, Any]) -> CredentialStatus:
    gateway.rows.check(TABLE, row)
    reason = row["reason"]
    if reason not in SUMMARIES or not isinstance(row["version"], int):
        _refuse(gateway, TamperedRowError(TABLE, row["credential_id"]))
    status = CredentialStatus(**{column: row[column] for column in _COLUMNS})

    def agrees(action: str, details: dict[str, Any]) -> bool:
        del action
        return details.get("reason") == status.reason and (
            details.get("server_expires_at") == status.server_expires_at
        )

    gateway.rows.check_current(
        TABLE, status.credential_id, status.name, (TESTED,), agrees, holding=_STORED
    )
    return status


def _save(gateway: Gateway, status: CredentialStatus) -> None:
    row = {**status.row(), "mac": None}
    row["mac"] = gateway.rows.sealed(TABLE, row)
    columns = ", ".join(row)
    updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "credential_id")
    gateway.store.execute(
        f"INSERT INTO {TABLE} ({columns}) VALUES ({', '.join('?' * len(row))})"  # noqa: S608 - fixed names
        f" ON CONFLICT (credential_id) DO UPDATE SET {updates}",
        list(row.values()),
    )


def _refuse(gateway: Gateway, error: TamperedRowError) -> None:
    if not gateway.store.in_write:
        record_refusal(gateway.audit, error)
    raise error


def _outcome(reason: ReasonCode) -> Literal["ok", "failed", "refused"]:
    return "ok" if reason == "ok" else "refused" if reason == "refused_by_policy" else "failed"

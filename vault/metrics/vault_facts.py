"""What a metrics scrape reports of the vault: counts read at that moment, read-only.

A scrape comes every few seconds, so what it reads is bounded: one pass over
the credentials' and statuses' sealed columns (never a ciphertext, never the
audit trail), the members and the leases.  Each row's seal is checked
(``RowSeal.holding``) without recording anything: a row written outside
gwvault counts as ``unverified`` and gives no name or date, while the next
read that decides something on it (the scheduler, a list) refuses and
records it.  A status row is checked by its seal only, not against the
trail's newest test (one audit query per credential per scrape): an older
row put back could show an older reason here until the next scheduled test.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault.access.row_seal import TamperedRowError
from vault.audit.sinks.standing import sink_lags
from vault.connectors.connection import REASON_CODES
from vault.credential_life import stored_instant
from vault.gateway import Gateway

CREDENTIAL_STATES = ("active", "expired", "disabled", "deleted", "unverified")
STATUS_REASONS = (*REASON_CODES, "untested", "unverified")
MEMBER_STATES = ("enabled", "disabled", "unverified")  # a removed member has no row
UNVERIFIED = "unverified"
Holds = Callable[[str, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class NamedCredential:
    """One credential's own series (only when the admin named them: ``per_credential``)."""

    name: str
    state: str
    reason: str
    expires_at: float | None


@dataclass(frozen=True)
class VaultFacts:
    """The vault's numbers at one moment (``read_vault_facts``)."""

    credentials: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    nearest_expiry: float | None = None
    named: tuple[NamedCredential, ...] = ()
    members: Counter[str] | None = None  # None: a single machine
    lease_holders: tuple[tuple[str, str], ...] = ()  # (lease, member) of each live lease
    sink_lags: tuple[tuple[str, str, int], ...] = ()  # (sink, policy, entries behind)


def read_vault_facts(gateway: Gateway, *, per_credential: bool) -> VaultFacts:
    """The numbers, in one read snapshot; ``per_credential`` adds each credential's own."""
    with gateway.store.reading():
        now = gateway.context.clock()
        holds = gateway.rows.holding()
        statuses = _status_rows(gateway, holds)
        credentials: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        named: list[NamedCredential] = []
        nearest: datetime.datetime | None = None
        for row in _credential_rows(gateway):
            state = _state(row, now) if holds("credentials", row) else UNVERIFIED
            credentials[state] += 1
            if state not in ("active", "expired"):
                continue  # disabled and deleted are not tested; unverified tells nothing
            status = statuses.get(row["id"])
            reason = status["reason"] if status else "untested"
            reasons[reason] += 1
            expiry = _earliest(row["expires_at"], status["server_expires_at"] if status else None)
            if expiry is not None and (nearest is None or expiry < nearest):
                nearest = expiry
            if per_credential:
                at = expiry.timestamp() if expiry else None
                named.append(NamedCredential(row["name"], state, reason, at))
        return VaultFacts(
            credentials=credentials,
            statuses=reasons,
            nearest_expiry=nearest.timestamp() if nearest else None,
            named=tuple(named),
            members=_members(gateway, holds),
            lease_holders=_lease_holders(gateway),
            sink_lags=_sink_lags(gateway),
        )


def _credential_rows(gateway: Gateway) -> list[dict[str, Any]]:
    columns = gateway.rows.columns("credentials")
    return gateway.store.rows(f"SELECT {columns} FROM credentials", [])  # noqa: S608 - fixed names


def _status_rows(gateway: Gateway, holds: Holds) -> dict[str, dict[str, Any]]:
    """Each status row whose seal holds, by credential id (a broken one: as if untested)."""
    columns = gateway.rows.columns("credential_status")
    rows = gateway.store.rows(f"SELECT {columns} FROM credential_status", [])  # noqa: S608 - fixed names
    return {
        row["credential_id"]: row
        for row in rows
        if holds("credential_status", row) and row["reason"] in REASON_CODES
    }


def _state(row: dict[str, Any], now: datetime.datetime) -> str:
    if row["deleted_at"] is not None:
        return "deleted"
    if row["disabled_at"] is not None:
        return "disabled"
    expires = stored_instant(row["expires_at"])
    return "expired" if expires is not None and expires <= now else "active"


def _earliest(*instants: str | None) -> datetime.datetime | None:
    parsed = [at for text in instants if (at := stored_instant(text)) is not None]
    return min(parsed, default=None)


def _members(gateway: Gateway, holds: Holds) -> Counter[str] | None:
    if gateway.member_id is None:
        return None
    columns = gateway.rows.columns("members")
    found: Counter[str] = Counter()
    for row in gateway.store.rows(f"SELECT {columns} FROM members", []):  # noqa: S608 - fixed names
        verified = holds("members", row) and row["state"] in MEMBER_STATES
        found[row["state"] if verified else UNVERIFIED] += 1
    return found


def _lease_holders(gateway: Gateway) -> tuple[tuple[str, str], ...]:
    """Each lease some member holds now (a lease row is unsealed: it names who
    holds singleton work, decides no access, and is fenced by its token)."""
    if gateway.member_id is None:
        return ()
    store = gateway.store
    now_ms = store.engine.database_time_ms()
    rows = store.rows("SELECT name, holder, expires_ms FROM leases ORDER BY name", [])
    return tuple(
        (str(row["name"]), str(row["holder"])) for row in rows if int(row["expires_ms"]) > now_ms
    )


def _sink_lags(gateway: Gateway) -> tuple[tuple[str, str, int], ...]:
    """Each audit sink's name, policy and entries behind.  Its rows are read
    unchecked, as ``gwvault status`` reads them: a count decides nothing, and a
    refusal recorded per scrape would flood the trail; whatever sends to a sink
    checks it.  A sink without its place (planted) leaves the series out."""
    try:
        lags = sink_lags(gateway, checked=False)
    except TamperedRowError:
        return ()
    return tuple((lag.name, lag.policy, lag.behind) for lag in lags)

"""What a connection tester takes and gives back.

A result is a stable reason code (what scheduled health checks and the audit
trail key on) plus the tester's own words, ``detail``: the driver's message,
redacted, which can quote the far end (a banner, a TLS error, a server's
greeting).  Only an admin sees ``detail``; everyone else gets ``summary``, one
fixed sentence per reason, so a test is no banner grabber (threat T-CN-3).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from agent_keys.secret import Secret
from vault.format.data_source import AuthType

ReasonCode = Literal[
    "ok",
    "auth_failed",
    "account_locked",
    "password_expired",
    "database_missing",
    "unreachable",
    "tls_failed",
    "timeout",
    "refused_by_policy",
]
SUMMARIES: dict[ReasonCode, str] = {
    "ok": "Connected: the server accepted the credential.",
    "auth_failed": "The server refused the user name or secret.",
    "account_locked": "The server says the account is locked or may not log in.",
    "password_expired": "The server says the password has expired and must be changed.",
    "database_missing": "The database (or file, or resource) was not found.",
    "unreachable": "The server could not be reached, or did not answer as this type of server.",
    "tls_failed": "TLS failed: the server's certificate or TLS did not meet the credential's"
    " TLS policy.",
    "timeout": "The server did not answer in time.",
    "refused_by_policy": "The gateway's policy does not allow this test (its destination or"
    " the server's authentication method); ask an admin.",
}
REASON_CODES: tuple[ReasonCode, ...] = tuple(SUMMARIES)


@dataclass(frozen=True)
class ConnectionCredential:
    """The login presented to the data source."""

    auth: AuthType
    username: str | None
    secret: Secret | None


@dataclass(frozen=True)
class ConnectionTestResult:
    """A reason code and the tester's one-line ``detail`` (admins only); never the secret."""

    reason: ReasonCode
    detail: str
    server_expires_at: str | None = None
    """When the server says this login expires (ISO 8601 UTC), as the login itself
    may read it on a successful test; None: never, or unknown."""

    @property
    def ok(self) -> bool:
        return self.reason == "ok"

    @property
    def summary(self) -> str:
        """The fixed sentence for the reason: what a caller who is not an admin sees."""
        return SUMMARIES[self.reason]


def expiry_instant(epoch_seconds: float) -> str | None:
    """The ISO 8601 UTC instant of a server's expiry in seconds since the epoch
    (None for a value no calendar holds: the server's answer is not trusted)."""
    try:
        moment = datetime.datetime.fromtimestamp(float(epoch_seconds), datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds")

"""What a connection tester takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass

from agent_keys.secret import Secret
from vault.format.data_source import AuthType


@dataclass(frozen=True)
class ConnectionCredential:
    """The login presented to the data source."""

    auth: AuthType
    username: str | None
    secret: Secret | None


@dataclass(frozen=True)
class ConnectionTestResult:
    """``ok`` and a one-line message for a person; never contains the secret."""

    ok: bool
    message: str

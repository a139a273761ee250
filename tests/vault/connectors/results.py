"""What every connection-test result must look like, and a basic-auth login helper."""

from __future__ import annotations

from agent_keys.secret import Secret
from vault.connectors import dispatch
from vault.connectors.connection import ConnectionCredential, ConnectionTestResult
from vault.format.data_source import DataSource


def login(
    kind: str,
    server: str,
    user: str,
    password: str,
    database: str | None = None,
    *,
    timeout: float = 10.0,
) -> ConnectionTestResult:
    """``test_connection`` with a basic-auth credential against a database server."""
    credential = ConnectionCredential("basic", user, Secret.from_text(password))
    source = DataSource("postgresql" if kind == "postgresql" else "mysql", server, database)
    return dispatch.test_connection(source, credential, timeout)


def assert_presentable(result: ConnectionTestResult, *secrets: str) -> None:
    """One non-empty line for a person, holding none of ``secrets``."""
    assert result.message and "\n" not in result.message
    for secret in secrets:
        assert secret not in result.message

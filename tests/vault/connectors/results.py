"""What every connection-test result must look like, and a basic-auth login helper."""

from __future__ import annotations

from agent_keys.secret import Secret
from vault.connectors import dispatch
from vault.connectors.connection import SUMMARIES, ConnectionCredential, ConnectionTestResult
from vault.connectors.destinations import AllowedNetwork, DestinationPolicy
from vault.format.data_source import DataSource, DataSourceType, TlsMode

# The test servers listen on loopback, which tests by callers who are not
# admins may not reach: these tests allow it explicitly, as an admin would.
LOOPBACK_ALLOWED = DestinationPolicy(
    allowed=(AllowedNetwork.parse("127.0.0.0/8"), AllowedNetwork.parse("::1/128"))
)


def login(
    kind: DataSourceType,
    server: str,
    user: str,
    password: str,
    database: str | None = None,
    *,
    timeout: float = 10.0,
    tls: TlsMode = "disable",
    ca_pem: str | None = None,
    policy: DestinationPolicy = LOOPBACK_ALLOWED,
) -> ConnectionTestResult:
    """``test_connection`` with a basic-auth credential against a database server."""
    credential = ConnectionCredential("basic", user, Secret.from_text(password))
    source = DataSource(kind, server, database, tls=tls, ca_pem=ca_pem)
    return dispatch.test_connection(source, credential, timeout, policy=policy)


def assert_presentable(result: ConnectionTestResult, *secrets: str) -> None:
    """One non-empty line for a person, holding none of ``secrets``; a known reason."""
    assert result.reason in SUMMARIES
    assert result.detail and "\n" not in result.detail
    for secret in secrets:
        assert secret not in result.detail

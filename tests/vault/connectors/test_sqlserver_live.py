"""The SQL Server tester against a real SQL Server, when one is given.

No SQL Server can run on the project's machines, so these run only where
``GWVAULT_SQLSERVER_URL`` names one (README, "SQL Server"):

    sqlserver://USER:PASSWORD@HOST[:PORT]/DATABASE?tls=verify-full&ca=/path/ca.pem

(user and password percent-encoded; ``tls`` verify-full or verify-ca, ``ca``
optional).  Without it they skip, even under ``GWVAULT_REQUIRE_SERVICES=1``:
CI has no SQL Server to require.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.vault.connectors.results import assert_presentable, login
from vault.connectors.destinations import DestinationPolicy
from vault.format.ca_certificates import canonical_ca_pem
from vault.format.data_source import TlsMode, parse_tls_mode

URL_ENV = "GWVAULT_SQLSERVER_URL"


@dataclass(frozen=True)
class LiveServer:
    server: str
    database: str
    user: str
    password: str = field(repr=False)
    tls: TlsMode
    ca_pem: str | None


@pytest.fixture(scope="module")
def live() -> LiveServer:
    url = os.environ.get(URL_ENV)
    if not url:
        # Not require_service: no CI machine has a SQL Server to require.
        pytest.skip(f"no SQL Server: set {URL_ENV} to run these (README, SQL Server)")
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if parts.scheme != "sqlserver" or not parts.hostname or not parts.username:
        pytest.fail(f"{URL_ENV} must be sqlserver://USER:PASSWORD@HOST[:PORT]/DATABASE?tls=...")
    ca = query.get("ca")
    return LiveServer(
        server=f"{parts.hostname}:{parts.port or 1433}",
        database=parts.path.lstrip("/") or "master",
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        tls=parse_tls_mode(query.get("tls", "verify-full")),
        ca_pem=canonical_ca_pem(Path(ca).read_text()) if ca else None,
    )


def test_the_right_password_connects(live: LiveServer) -> None:
    result = login(
        "sqlserver", live.server, live.user, live.password, live.database, tls=live.tls,
        ca_pem=live.ca_pem, policy=DestinationPolicy().for_admin(),
    )  # fmt: skip
    assert result.ok, result.detail
    assert result.detail.startswith("ok: connected to SQL Server ")
    assert_presentable(result, live.password)


def test_a_wrong_password_is_auth_failed(live: LiveServer, canary: str) -> None:
    result = login(
        "sqlserver", live.server, live.user, canary, live.database, tls=live.tls,
        ca_pem=live.ca_pem, policy=DestinationPolicy().for_admin(),
    )  # fmt: skip
    assert result.reason == "auth_failed", result.detail
    assert "(error 18456)" in result.detail
    assert_presentable(result, canary, live.password)


def test_a_missing_database_is_database_missing(live: LiveServer) -> None:
    result = login(
        "sqlserver", live.server, live.user, live.password, f"gwv_missing_{os.urandom(4).hex()}",
        tls=live.tls, ca_pem=live.ca_pem, policy=DestinationPolicy().for_admin(),
    )  # fmt: skip
    assert result.reason == "database_missing", result.detail
    assert "(error 4060)" in result.detail
    assert_presentable(result, live.password)

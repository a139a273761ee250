"""SQL Server connection tests without a SQL Server: the TLS policy, a closed port, a
silent listener, and a fake server that does the real pre-login and TLS handshake
and then refuses the login with SQL Server's own error tokens (``fake_tds``).

A real server: ``test_sqlserver_live.py`` (``GWVAULT_SQLSERVER_URL``)."""

from __future__ import annotations

import socket

import pytest
from pytds import tds_base

from agent_keys.errors import DataSourceError, InvalidInputError
from agent_keys.secret import Secret
from tests.service_fixtures import free_tcp_port
from tests.tls_certificates import CertificateAuthority
from tests.vault.connectors.fake_tds import ENCRYPT_NOT_SUP, ENCRYPT_OFF, LOGIN7, fake_sql_server
from tests.vault.connectors.results import assert_presentable, login
from vault.connectors import dispatch, sqlserver
from vault.connectors.connection import ConnectionCredential, ReasonCode
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import Destination, DestinationPolicy
from vault.format.data_source import DataSource, TlsMode

MISSING_DATABASE = (
    (4060, 'Cannot open database "sales" requested by the login. The login failed.'),
    (18456, "Login failed for user 'alice'."),
)


@pytest.mark.parametrize("mode", ["require", "disable"])
def test_a_sql_login_needs_a_verifying_tls_mode(mode: TlsMode, canary: str) -> None:
    with pytest.raises(InvalidInputError, match="only to a server whose certificate") as refused:
        login("sqlserver", "db.example.com", "alice", canary, tls=mode)
    assert canary not in str(refused.value)


def test_a_windows_login_is_refused_before_any_connection(canary: str) -> None:
    credential = ConnectionCredential("basic", "CORP\\alice", Secret.from_text(canary))
    with pytest.raises(InvalidInputError, match="Windows"):
        dispatch.validate_data_source(DataSource("sqlserver", "db.example.com"), credential)


@pytest.mark.parametrize("mode", ["require", "disable", "prefer"])
def test_the_driver_never_sends_a_login_to_an_unverified_server(mode: TlsMode, canary: str) -> None:
    """Defence in depth below ``validate_data_source``: a legacy or damaged row."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        destination = Destination("localhost", listener.getsockname()[1], ("127.0.0.1",))
        with pytest.raises(sqlserver.PolicyRefused) as refused:
            sqlserver.open_connection(
                destination, tls=mode, ca_pem=None, database=None, username="alice",
                password=canary, timeout=1.0,
            )  # fmt: skip
        assert sqlserver.classify(refused.value) == "refused_by_policy"
        listener.settimeout(0.05)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing even connected


def test_a_destination_the_policy_refuses_is_never_reached(canary: str) -> None:
    port = free_tcp_port()
    result = login(
        "sqlserver", f"127.0.0.1:{port}", "alice", canary, tls="verify-full",
        policy=DestinationPolicy(),
    )  # fmt: skip
    assert result.reason == "refused_by_policy"
    assert "loopback" in result.detail


def test_unreachable_port_is_a_result_not_an_exception(canary: str) -> None:
    result = login("sqlserver", f"127.0.0.1:{free_tcp_port()}", "alice", canary, tls="verify-full")
    assert result.reason == "unreachable"
    assert "Connection refused" in result.detail
    assert_presentable(result, canary)


def test_silent_server_times_out(silent_tcp_port: int, canary: str) -> None:
    server = f"127.0.0.1:{silent_tcp_port}"
    deadline = Deadline(0.5)
    result = login("sqlserver", server, "alice", canary, tls="verify-full", timeout=0.5)
    assert result.reason == "timeout", result.detail
    assert deadline.remaining() > -0.5  # no more than the deadline and a little
    assert_presentable(result, canary)


def test_a_certificate_from_another_ca_fails_before_the_login(
    untrusted_ca: CertificateAuthority, trusted_ca_pem: str, canary: str
) -> None:
    with fake_sql_server(untrusted_ca) as fake:
        result = login(
            "sqlserver", f"localhost:{fake.port}", "alice", canary, tls="verify-ca",
            ca_pem=trusted_ca_pem,
        )  # fmt: skip
    assert result.reason == "tls_failed", result.detail
    assert "certificate verify failed" in result.detail
    assert fake.received == []
    assert_presentable(result, canary)


def test_a_certificate_for_another_name_fails_under_verify_full(
    trusted_ca: CertificateAuthority, trusted_ca_pem: str, canary: str
) -> None:
    with fake_sql_server(trusted_ca) as fake:
        # The certificate names localhost and 127.0.0.1; the server is named otherwise.
        destination = Destination("sql.example.com", fake.port, ("127.0.0.1",))
        result = sqlserver.attempt_login(
            destination, tls="verify-full", ca_pem=trusted_ca_pem, database=None,
            username="alice", password=canary, deadline=Deadline(5),
        )  # fmt: skip
    assert result.reason == "tls_failed", result.detail
    assert "Hostname mismatch" in result.detail or "match" in result.detail
    assert fake.received == []


@pytest.mark.parametrize(
    ("errors", "reason"),
    [
        (((18456, "Login failed for user 'alice'."),), "auth_failed"),
        (MISSING_DATABASE, "database_missing"),
        (((18486, "Login failed for user 'alice': the account is locked."),), "account_locked"),
        (
            ((18487, "Login failed for user 'alice': the password has expired."),),
            "password_expired",
        ),
        (
            ((18488, "Login failed for user 'alice': the password must be changed."),),
            "password_expired",
        ),
    ],
)
def test_a_verified_server_gets_the_login_over_tls_and_its_refusal_is_classified(
    trusted_ca: CertificateAuthority,
    trusted_ca_pem: str,
    canary: str,
    errors: tuple[tuple[int, str], ...],
    reason: ReasonCode,
) -> None:
    with fake_sql_server(trusted_ca, errors=errors) as fake:
        result = login(
            "sqlserver", f"localhost:{fake.port}", "alice", canary, "sales",
            tls="verify-full", ca_pem=trusted_ca_pem,
        )  # fmt: skip
    assert result.reason == reason, result.detail
    assert f"(error {errors[0][0]})" in result.detail
    # The password travelled only inside the verified TLS, in the LOGIN7 packet.
    assert [packet[0] for packet in fake.received] == [LOGIN7]
    assert_presentable(result, canary)


@pytest.mark.parametrize("answer", [ENCRYPT_OFF, ENCRYPT_NOT_SUP])
def test_a_server_that_will_not_encrypt_everything_gets_no_login(
    trusted_ca: CertificateAuthority, trusted_ca_pem: str, canary: str, answer: int
) -> None:
    with fake_sql_server(trusted_ca, encryption=answer) as fake:
        result = login(
            "sqlserver", f"localhost:{fake.port}", "alice", canary, tls="verify-full",
            ca_pem=trusted_ca_pem,
        )  # fmt: skip
    assert result.reason == "unreachable", result.detail
    assert fake.received == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "unreachable"),
        (TimeoutError("timed out"), "timeout"),
        (tds_base.ClosedConnectionError(), "unreachable"),
        (sqlserver.PolicyRefused("no"), "refused_by_policy"),
    ],
)
def test_classify_socket_and_driver_errors(error: Exception, reason: ReasonCode) -> None:
    assert sqlserver.classify(error) == reason


def test_classify_reads_the_number_python_tds_sets() -> None:
    message: tds_base.Message = {
        "marker": 0xAA, "msgno": 18456, "state": 1, "severity": 14, "sql_state": None,
        "priv_msg_type": 1, "message": "Login failed for user 'alice'.", "server": "db",
        "proc_name": "", "line_number": 1,
    }  # fmt: skip
    assert sqlserver.classify(tds_base._create_exception_by_message(message)) == "auth_failed"


def test_the_agents_session_connects_the_same_way_and_says_why_it_failed(
    trusted_ca: CertificateAuthority, trusted_ca_pem: str, canary: str
) -> None:
    with fake_sql_server(trusted_ca, errors=MISSING_DATABASE) as fake:
        source = DataSource(
            "sqlserver", f"localhost:{fake.port}", "sales", tls="verify-full", ca_pem=trusted_ca_pem
        )
        credential = ConnectionCredential("basic", "alice", Secret.from_text(canary))
        with pytest.raises(DataSourceError) as failed:
            dispatch.open_session(source, credential, timeout=5.0)
    assert failed.value.reason == "database_missing"
    assert "(error 4060)" in str(failed.value) and canary not in str(failed.value)
    assert failed.value.__cause__ is None
    assert [packet[0] for packet in fake.received] == [LOGIN7]

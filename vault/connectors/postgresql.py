"""PostgreSQL login test (and the agent's connection) with psycopg 3 and its libpq.

The TLS mode maps to libpq's ``sslmode`` of the same name; verifying modes
check against the credential's CA (handed to libpq as an in-memory file) or
the system store, the same CA file Python's ``ssl`` uses (``SSL_CERT_FILE``
honoured): psycopg's bundled libpq would look for "system" CAs under its own
OpenSSL directory, which does not exist on most machines.  Whatever the mode, the password is
only ever proven with SCRAM-SHA-256 (``require_auth``): libpq refuses a server
that asks for it in clear or for an MD5 hash, which would give an impersonator
the password or a cheap offline guessing oracle (threat T-CN-1).  With TLS,
channel binding is required as well, so a man in the middle who terminates TLS
cannot relay the SCRAM exchange.
"""

from __future__ import annotations

import contextlib
import math
import ssl
from dataclasses import replace
from typing import Any

import psycopg

from agent_keys.private_files import memory_files
from vault.connectors.connection import ConnectionTestResult, ReasonCode, expiry_instant
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import Destination
from vault.format.data_source import VERIFYING_TLS_MODES, TlsMode

_ENCRYPTED = ("verify-full", "verify-ca", "require")


def attempt_login(
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    database: str | None,
    username: str,
    password: str,
    deadline: Deadline,
) -> ConnectionTestResult:
    """Connect, run ``SELECT 1`` and report within ``deadline``; never raises for a
    failed login."""
    opened = _open_within(
        deadline, destination, tls=tls, ca_pem=ca_pem, database=database,
        username=username, password=password,
    )  # fmt: skip
    if isinstance(opened, ConnectionTestResult):
        return opened
    connection = opened
    try:
        with deadline.guarding(connection.pgconn.socket):
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            version = _version_text(connection.info.server_version)
            encrypted = connection.pgconn.ssl_in_use
            expires_at = _valid_until(connection)
    except (psycopg.Error, OSError) as e:
        return ConnectionTestResult(classify(e), str(e) or type(e).__name__)
    finally:
        connection.close()
    over = "TLS" if encrypted else "no TLS"
    return ConnectionTestResult(
        "ok",
        f"ok: connected to PostgreSQL {version} as {username} ({over}, tls {tls})",
        expires_at,
    )


def _valid_until(connection: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The login role's ``VALID UNTIL`` (None: never, or unreadable).

    Every role may read its own ``pg_roles`` row.  Once it has passed,
    PostgreSQL refuses the password with the same words as a wrong one, so this
    is the only time the server tells (vault.health.status uses it).
    """
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles"
                " WHERE rolname = current_user AND isfinite(rolvaliduntil)"
            )
            row = cursor.fetchone()
    except psycopg.Error:
        return None
    return expiry_instant(float(str(row[0]))) if row and row[0] is not None else None


def _open_within(
    deadline: Deadline, destination: Destination, **login: Any
) -> psycopg.Connection[tuple[object, ...]] | ConnectionTestResult:
    """A connection, trying the addresses one by one while ``deadline`` lasts
    (libpq would give each its own whole timeout); the failure as a result.

    libpq waits at least 2 s per attempt, so a deadline shorter than that may
    be overrun by the difference; the connection and login stay within it else.
    """
    failure: ConnectionTestResult | None = None
    for address in destination.addresses:
        if deadline.expired:
            break
        one = replace(destination, addresses=(address,))
        try:
            return open_connection(one, timeout=deadline.remaining(), **login)
        except (psycopg.Error, OSError, ValueError) as e:
            failure = ConnectionTestResult(classify(e), str(e) or type(e).__name__)
        if failure.reason not in ("unreachable", "timeout"):
            break  # the server answered: libpq too stops at a refused login
    return failure or ConnectionTestResult("timeout", "timed out before any address answered")


def open_connection(
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    database: str | None,
    username: str,
    password: str,
    timeout: float,
    purpose: str = "gwvault connection test",
) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to the checked ``destination`` under the credential's TLS policy.

    Raises what psycopg raises (``psycopg.Error``); ``classify`` names it.  The
    password travels as its own keyword: psycopg quotes it into the conninfo
    handed to libpq, and it is never part of a string a driver error quotes.
    """
    count = len(destination.addresses)
    with contextlib.ExitStack() as stack:
        ca_path = stack.enter_context(memory_files(ca_pem.encode("ascii")))[0] if ca_pem else None
        return psycopg.connect(
            # One host entry per checked address: libpq connects to ``hostaddr``
            # (no second lookup) and verifies the certificate against ``host``.
            host=",".join([destination.host] * count),
            hostaddr=",".join(destination.addresses),
            port=destination.port,
            dbname=database or username,  # libpq's own default, made explicit
            user=username,
            password=password,
            # libpq rounds up to 2 s at least; the whole connect, per address.
            connect_timeout=max(2, math.ceil(timeout)),
            application_name=purpose,
            options=f"-c statement_timeout={math.ceil(timeout * 1000)}",
            autocommit=True,
            **libpq_tls_options(tls, ca_path),
        )


def libpq_tls_options(tls: TlsMode, ca_path: str | None) -> dict[str, Any]:
    """libpq's settings for a TLS mode; explicit values also override any
    PGSSLMODE, PGREQUIREAUTH or PGCHANNELBINDING in the environment."""
    options: dict[str, Any] = {
        "sslmode": tls,
        "require_auth": "scram-sha-256",
        "channel_binding": "require" if tls in _ENCRYPTED else "disable" if tls == "disable"
        else "prefer",
        # GSS encryption would stand in for TLS and skip the certificate check.
        "gssencmode": "disable",
    }  # fmt: skip
    if tls in VERIFYING_TLS_MODES:
        options["sslrootcert"] = ca_path or ssl.get_default_verify_paths().cafile or "system"
    return options


def classify(error: Exception) -> ReasonCode:
    """The reason code of a psycopg or socket error: libpq's words, else SQLSTATE."""
    text = str(error).lower()
    for phrase, reason in _PHRASES:
        if phrase in text:
            return reason
    return _SQLSTATES.get(getattr(error, "sqlstate", None) or "", "unreachable")


# libpq's own words, first match wins (client-side failures carry no SQLSTATE).
_PHRASES: tuple[tuple[str, ReasonCode], ...] = (
    ("not permitted to log in", "account_locked"),
    # Under trust or peer authentication a missing role is named: a login failure.
    ('fatal:  role "', "auth_failed"),
    ("does not exist", "database_missing"),
    ("authentication failed", "auth_failed"),
    # require_auth or channel_binding refused what the server offered.
    ("authentication method requirement", "refused_by_policy"),
    ("channel binding", "refused_by_policy"),
    ("timeout", "timeout"),
    ("timed out", "timeout"),
    ("ssl", "tls_failed"),
    ("certificate", "tls_failed"),
)
_SQLSTATES: dict[str, ReasonCode] = {
    "3D000": "database_missing",  # invalid_catalog_name
    "28P01": "auth_failed",  # invalid_password
    "28000": "auth_failed",  # invalid_authorization_specification
}


def _version_text(server_version: int) -> str:
    """150019 -> "15.19" (PostgreSQL 10 and later number versions MAJOR*10000+MINOR)."""
    if server_version >= 100000:
        return f"{server_version // 10000}.{server_version % 10000}"
    return f"{server_version // 10000}.{server_version // 100 % 100}.{server_version % 100}"

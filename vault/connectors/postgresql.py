"""PostgreSQL login test with psycopg 3."""

from __future__ import annotations

import math

import psycopg

from vault.connectors.connection import ConnectionTestResult


def attempt_login(
    host: str, port: int, *, database: str | None, username: str, password: str, timeout: float
) -> ConnectionTestResult:
    """Connect, run ``SELECT 1`` and report; never raises for a failed login.

    ``host`` and ``port`` come from ``dispatch.parse_host_port``.  The password
    travels as its own keyword: psycopg quotes it into the conninfo handed to
    libpq, and it is never part of a string a driver error could quote.
    """
    try:
        connection = psycopg.connect(
            host=host,
            port=port,
            dbname=database or username,  # libpq's own default, made explicit
            user=username,
            password=password,
            # libpq rounds up to 2 s at least; the whole connect, all addresses.
            connect_timeout=max(2, math.ceil(timeout)),
            # Encrypt when the server offers TLS, as libpq's default does; an
            # explicit value also overrides a PGSSLMODE set in the environment.
            sslmode="prefer",
            application_name="gwvault connection test",
            options=f"-c statement_timeout={math.ceil(timeout * 1000)}",
            autocommit=True,
            # libpq 16+ can refuse a request for the password in clear text:
            # with sslmode=prefer an attacker could strip TLS and then ask for
            # it; scram-sha-256 and md5 never put it on the wire.
            require_auth="!password" if psycopg.pq.version() >= 160000 else None,
        )
    except (psycopg.Error, OSError, ValueError) as e:
        return ConnectionTestResult(False, str(e) or type(e).__name__)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        version = _version_text(connection.info.server_version)
    except (psycopg.Error, OSError) as e:
        return ConnectionTestResult(False, str(e) or type(e).__name__)
    finally:
        connection.close()
    return ConnectionTestResult(True, f"ok: connected to PostgreSQL {version} as {username}")


def _version_text(server_version: int) -> str:
    """150019 -> "15.19" (PostgreSQL 10 and later number versions MAJOR*10000+MINOR)."""
    if server_version >= 100000:
        return f"{server_version // 10000}.{server_version % 10000}"
    return f"{server_version // 10000}.{server_version // 100 % 100}.{server_version % 100}"

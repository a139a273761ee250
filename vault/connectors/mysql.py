"""MySQL and MariaDB login test with PyMySQL."""

from __future__ import annotations

from typing import NoReturn

import pymysql

from vault.connectors.connection import ConnectionTestResult

# Plugins that make the client send the password as it is.  libmysqlclient
# refuses them unless LIBMYSQL_ENABLE_CLEARTEXT_PLUGIN is set; PyMySQL would
# send it, even on a link an attacker has stripped of TLS.
CLEARTEXT_PLUGINS = ("mysql_clear_password", "dialog")


def attempt_login(
    host: str, port: int, *, database: str | None, username: str, password: str, timeout: float
) -> ConnectionTestResult:
    """Connect, run ``SELECT 1`` and report; never raises for a failed login.

    PyMySQL's default TLS mode is "preferred" (encrypt when the server offers
    it, like libpq's sslmode=prefer), so no TLS option is passed.
    """
    try:
        connection = pymysql.connect(
            host=host,
            port=port,
            user=username,
            # As UTF-8 bytes: PyMySQL would encode a str as Latin-1 and fail on
            # other characters; servers hash the bytes the mysql client sends.
            password=password.encode("utf-8"),
            database=database,
            # connect_timeout covers only the TCP connect; the greeting and the
            # authentication exchange are reads, bounded by read_timeout.
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            local_infile=False,
            auth_plugin_map=dict.fromkeys(CLEARTEXT_PLUGINS, _RefuseCleartextPassword),
        )
    except (pymysql.MySQLError, OSError, ValueError) as e:
        return ConnectionTestResult(False, _error_text(e))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        server_info: str = connection.get_server_info()  # type: ignore[no-untyped-call]
    except (pymysql.MySQLError, OSError) as e:
        return ConnectionTestResult(False, _error_text(e))
    finally:
        connection.close()
    return ConnectionTestResult(True, f"ok: connected to {_server_name(server_info)} as {username}")


class _RefuseCleartextPassword:
    """PyMySQL auth plugin handler that answers a cleartext request with an error."""

    def __init__(self, connection: object) -> None:
        del connection

    def authenticate(self, packet: object) -> NoReturn:
        raise pymysql.err.OperationalError(
            2059, "the server asked for the password in clear text; refused"
        )


def _server_name(server_info: str) -> str:
    """The product and version, e.g. "MariaDB 10.11.19" or "MySQL 8.0.36"."""
    if "mariadb" not in server_info.lower():
        return f"MySQL {server_info.split('-', 1)[0]}"
    # MariaDB before 11 prefixes "5.5.5-" so that old MySQL clients accept it.
    return f"MariaDB {server_info.removeprefix('5.5.5-').split('-', 1)[0]}"


def _error_text(error: Exception) -> str:
    """PyMySQL errors carry ``(code, message)``; show the message a person reads."""
    if len(error.args) == 2 and isinstance(error.args[1], str):
        return f"{error.args[1]} (error {error.args[0]})"
    return str(error) or type(error).__name__

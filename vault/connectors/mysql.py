"""MySQL and MariaDB login test (and the agent's connection) with PyMySQL.

The password itself (caching_sha2_password's and sha256_password's full
authentication, in clear over TLS or RSA-encrypted to a key the server hands
over; mysql_clear_password; PAM's dialog) goes only to a server whose
certificate was verified (TLS mode verify-full or verify-ca): an impersonator
would get it (threat T-CN-1).  Under require, disable and the legacy prefer,
only challenge-response proofs are sent (mysql_native_password, the
caching_sha2 scramble, ed25519); a server that wants more is refused with
reason ``refused_by_policy``.  Those proofs still give an impersonator an
offline guessing oracle, which only certificate verification prevents; that
is why verify-full is the default.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, NoReturn

import pymysql
from pymysql import _auth

from vault.connectors.connection import ConnectionTestResult, ReasonCode, expiry_instant
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import Destination, connect_tcp
from vault.connectors.tls_policy import client_context, sends_password
from vault.format.data_source import TlsMode

# Plugins whose answer is the password as it is, or encrypted to the server's key.
PASSWORD_PLUGINS = ("mysql_clear_password", "dialog", "sha256_password")
_REFUSED = 2059  # CR_AUTH_PLUGIN_CANNOT_LOAD: what libmysqlclient says for a refused plugin
_CODES: dict[int, ReasonCode] = {
    1044: "auth_failed",  # ER_DBACCESS_DENIED_ERROR: no grant on the database
    1045: "auth_failed",  # ER_ACCESS_DENIED_ERROR
    1698: "auth_failed",  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1049: "database_missing",  # ER_BAD_DB_ERROR
    1129: "account_locked",  # ER_HOST_IS_BLOCKED
    3118: "account_locked",  # MySQL ER_ACCOUNT_HAS_BEEN_LOCKED
    3955: "account_locked",  # MySQL: locked after failed logins
    4151: "account_locked",  # MariaDB ER_ACCOUNT_HAS_BEEN_LOCKED
    1820: "password_expired",  # ER_MUST_CHANGE_PASSWORD
    1862: "password_expired",  # ER_MUST_CHANGE_PASSWORD_LOGIN
    2026: "tls_failed",  # CR_SSL_CONNECTION_ERROR
}


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
    try:
        sock = connect_tcp(destination, deadline.left(), deadline)
    except OSError as e:
        return ConnectionTestResult(classify(e), _error_text(e))
    with sock, deadline.guarding(sock):
        try:
            connection = open_connection(
                destination, tls=tls, ca_pem=ca_pem, database=database, username=username,
                password=password, timeout=max(deadline.remaining(), 0.001), connected=sock,
            )  # fmt: skip
        except (pymysql.MySQLError, OSError, ValueError) as e:
            return ConnectionTestResult(classify(e), _error_text(e))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
            server_info: str = connection.get_server_info()  # type: ignore[no-untyped-call]
            expires_at = _password_expiry(connection, "mariadb" in server_info.lower())
        except (pymysql.MySQLError, OSError) as e:
            return ConnectionTestResult(classify(e), _error_text(e))
        finally:
            connection.close()
    return ConnectionTestResult(
        "ok", f"ok: connected to {_server_name(server_info)} as {username} (tls {tls})", expires_at
    )


# When the login's password was last changed (epoch seconds), its own lifetime
# in days (MariaDB -1, MySQL NULL: the global default; 0: never), and the
# global default.  Only a login that may read the grant tables sees its row.
_MARIADB_EXPIRY = (
    "SELECT JSON_VALUE(Priv, '$.password_last_changed'), JSON_VALUE(Priv, '$.password_lifetime'),"
    " @@default_password_lifetime FROM mysql.global_priv"
    " WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
)
_MYSQL_EXPIRY = (
    "SELECT UNIX_TIMESTAMP(password_last_changed), password_lifetime,"
    " @@default_password_lifetime FROM mysql.user WHERE CONCAT(User, '@', Host) = CURRENT_USER()"
)


def _password_expiry(connection: pymysql.Connection[Any], mariadb: bool) -> str | None:
    """When the login's password expires, where the login may see it (None:
    never, or not visible to it; a refused read is no failed test)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(_MARIADB_EXPIRY if mariadb else _MYSQL_EXPIRY)
            row = cursor.fetchone()
    except pymysql.MySQLError:
        return None
    if not row or row[0] is None:
        return None
    try:
        changed, own, default = float(row[0]), row[1], int(row[2])
        days = default if own is None or int(own) < 0 else int(own)
    except (TypeError, ValueError):
        return None
    return expiry_instant(changed + days * 86400) if days > 0 else None


def open_connection(
    destination: Destination,
    *,
    tls: TlsMode,
    ca_pem: str | None,
    database: str | None,
    username: str,
    password: str,
    timeout: float,
    connected: socket.socket | None = None,
) -> pymysql.Connection[Any]:
    """A connection to the checked ``destination`` under the credential's TLS policy,
    over ``connected`` (a socket to it) or a new one.

    Raises ``pymysql.MySQLError`` or ``OSError``; ``classify`` names them.
    """
    context = client_context(tls, ca_pem)
    password_allowed = sends_password(tls)
    connection = _PolicyConnection(
        password_allowed=password_allowed,
        host=destination.host,  # what TLS verifies; the socket below is to a checked address
        port=destination.port,
        user=username,
        # As UTF-8 bytes: PyMySQL would encode a str as Latin-1 and fail on
        # other characters; servers hash the bytes the mysql client sends.
        password=password.encode("utf-8"),
        database=database,
        # Every read and write is bounded, the greeting and the login included.
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        local_infile=False,
        # Legacy prefer is PyMySQL's own default: TLS when offered, unverified.
        ssl=context if tls != "prefer" else None,
        ssl_disabled=tls == "disable",
        auth_plugin_map={} if password_allowed else _SCRAMBLE_ONLY_PLUGINS,
        defer_connect=True,
    )
    sock = connected if connected is not None else connect_tcp(destination, timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection.connect(sock)
    return connection


def classify(error: Exception) -> ReasonCode:
    """The reason code of a PyMySQL or socket error."""
    if isinstance(error, _PasswordRefused):
        return "refused_by_policy"
    cause = getattr(error, "original_exception", None) or error
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return "tls_failed"
    if isinstance(cause, TimeoutError):
        return "timeout"
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if code in _CODES:
        return _CODES[code]
    if "timed out" in str(error):
        return "timeout"
    return "unreachable"


class _PasswordRefused(pymysql.err.OperationalError):
    """The server wanted the password itself and its certificate was not verified."""


class _PolicyConnection(pymysql.Connection):
    """PyMySQL's connection, refusing sha256_password in the first packet.

    A greeting that names sha256_password makes PyMySQL put the password in its
    very first answer once TLS is up, before any plugin handler is asked.
    """

    def __init__(self, *, password_allowed: bool, **kwargs: Any) -> None:
        self._password_allowed = password_allowed
        super().__init__(**kwargs)

    def _request_authentication(self) -> None:
        plugin = getattr(self, "_auth_plugin_name", "")
        if not self._password_allowed and plugin in PASSWORD_PLUGINS:
            raise _password_refused(plugin)
        super()._request_authentication()  # type: ignore[misc]


class _RefusePassword:
    """Auth plugin handler for the plugins that want the password itself."""

    def __init__(self, connection: object) -> None:
        del connection

    def authenticate(self, packet: object) -> NoReturn:
        raise _password_refused("clear text, RSA or PAM dialog")


class _CachingSha2ScrambleOnly:
    """caching_sha2_password without its full-authentication step: the scramble
    (a challenge-response) is sent; a request for the password itself is refused."""

    def __init__(self, connection: pymysql.Connection[Any]) -> None:
        self._connection = connection

    def authenticate(self, packet: Any) -> Any:
        # PyMySQL's auth helpers are untyped internals (pinned by tests/vault/connectors).
        connection: Any = self._connection
        helpers: Any = _auth
        if packet.is_auth_switch_request():
            salt = packet.read_all().removesuffix(b"\0")
            connection.salt = salt
            packet = helpers._roundtrip(
                connection, helpers.scramble_caching_sha2(connection.password, salt)
            )
        if not packet.is_extra_auth_data():
            return packet
        if packet.get_all_data()[1:2] == b"\x03":  # fast authentication succeeded
            return connection._read_packet()
        # 0x04: "perform full authentication", i.e. send the password.
        raise _password_refused("caching_sha2_password full authentication")


def _password_refused(plugin: str) -> _PasswordRefused:
    return _PasswordRefused(
        _REFUSED,
        f"the server asked for the password itself ({plugin}); gwvault sends it only over TLS"
        " whose certificate it verified (TLS mode verify-full or verify-ca); refused",
    )


_SCRAMBLE_ONLY_PLUGINS: dict[str, type] = {
    **dict.fromkeys(PASSWORD_PLUGINS, _RefusePassword),
    "caching_sha2_password": _CachingSha2ScrambleOnly,
}


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

"""Check a data source and credential, then run the tester for its type.

``validate_data_source`` is the one gate for server strings, auth combinations
and TLS policies: the service calls it before storing a credential and
``test_connection`` calls it before any socket opens.  ``test_connection`` then
resolves the server once and checks it against the caller's
``DestinationPolicy`` (``destinations``), and the tester connects to the
checked addresses only.  The testers (``postgresql``, ``mysql``, ``sqlserver``,
``sqlite``, ``http``) are loaded on use so the drivers stay out of a cold ``gwvault
--help``.  Every tester's detail passes through ``redact_message`` here, the
one choke point, before anyone sees it.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from agent_keys.errors import DataSourceError, InvalidInputError
from vault.connectors.connection import SUMMARIES, ConnectionCredential, ConnectionTestResult
from vault.connectors.deadline import Deadline
from vault.connectors.destinations import (
    Destination,
    DestinationPolicy,
    DestinationRefused,
    resolve_destination,
)
from vault.format.data_source import (
    VERIFYING_TLS_MODES,
    DataSource,
    check_login_shape,
    check_tls_policy,
)

DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "sqlserver": 1433, "http": 80, "https": 443}
TEST_DEADLINE_SECONDS = 10.0
MAX_SERVER_CHARS = 2048
MAX_DATABASE_CHARS = 255
MAX_MESSAGE_CHARS = 400
REDACTED = "<redacted>"
# A secret this short cannot be cut out of a message without the gaps
# spelling it: a message that holds one is withheld whole.
MIN_REDACTABLE_CHARS = 4
WITHHELD = "(the message is withheld: it holds text equal to a short secret)"

# RFC 1123 host names (underscore tolerated: Windows intranets use it) or IPv4.
# No "/" (libpq takes it as a unix socket dir), no "," (a libpq host list).
_HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
_PORT = re.compile(r"[0-9]{1,5}")
# RFC 6750 section 2.1 b64token: anything else could split the header.
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def validate_data_source(source: DataSource, credential: ConnectionCredential) -> None:
    """Refuse a server string or auth combination that can never work.

    Raises ``InvalidInputError`` with a one-line message naming the problem;
    the message never contains the secret.
    """
    validate_target(source)
    if source.type == "sqlite":
        _require_auth(credential, "anonymous", source.type)
    elif source.type == "http":
        _check_http_tls(http_url(source.server), source, credential)
        if credential.auth == "key":
            _check_bearer_token(_secret_text(credential))
        elif credential.auth == "basic" and ":" in (credential.username or ""):
            raise InvalidInputError("an HTTP Basic user name cannot contain ':' (RFC 7617)")
    else:
        _require_auth(credential, "basic", source.type)
        if source.type == "sqlserver" and "\\" in (credential.username or ""):
            raise InvalidInputError(
                "Windows (NTLM) logins, DOMAIN\\user, are not supported for sqlserver;"
                " use a SQL Server login"
            )
    check_login_shape(credential.auth, credential.username, credential.secret)


def validate_target(source: DataSource) -> None:
    """Refuse a server string or database name that can never work for its type
    (``InvalidInputError``); what an entry link fixes before any login exists."""
    if source.type == "sqlite":
        _check_sqlite_path(source.server)
    elif source.type == "http":
        http_url(source.server)
    else:
        parse_host_port(source.server, DEFAULT_PORTS[source.type])
        _check_database_name(source.database)
    check_tls_policy(source)
    if source.type == "sqlserver":
        _check_sqlserver_tls(source)


def test_connection(
    source: DataSource,
    credential: ConnectionCredential,
    timeout: float = TEST_DEADLINE_SECONDS,
    *,
    policy: DestinationPolicy = DestinationPolicy(),  # noqa: B008 - frozen, the strictest
) -> ConnectionTestResult:
    """Log in to the data source with the credential and report the outcome.

    ``timeout`` bounds the whole test: name lookup, connect, TLS, login and
    query (``deadline``), so a silent or trickling host frees its thread.
    Refused logins, unreachable servers, timeouts and destinations the
    ``policy`` refuses (reason ``refused_by_policy``, before any connection)
    are results, not errors.  Raises ``InvalidInputError`` only for input
    ``validate_data_source`` refuses or a timeout that is not a positive number
    of seconds.
    """
    validate_data_source(source, credential)
    if not (math.isfinite(timeout) and timeout > 0):
        raise InvalidInputError("the connection test timeout must be a positive number of seconds")
    password = _secret_text(credential) if credential.secret is not None else None
    deadline = Deadline(timeout)
    try:
        result = _run_tester(source, credential, password, deadline, policy)
    except DestinationRefused as refused:
        result = refused.result
    if not result.ok and deadline.expired:
        # Whatever the driver made of a socket shut under it, the cause is the time.
        result = ConnectionTestResult(
            "timeout", f"timed out: no answer within {timeout:g} s ({result.detail})"
        )
    secrets = _secret_forms(credential.username, password)
    return replace(result, detail=redact_message(result.detail, secrets))


# pytest would collect an imported ``test_*`` function as a test; it is not one.
test_connection.__test__ = False  # type: ignore[attr-defined]


def _run_tester(
    source: DataSource,
    credential: ConnectionCredential,
    password: str | None,
    deadline: Deadline,
    policy: DestinationPolicy,
) -> ConnectionTestResult:
    """The tester for ``source.type``; ``DestinationRefused`` before any connection."""
    username = credential.username
    if source.type == "sqlite":
        from vault.connectors import sqlite

        return sqlite.attempt_open(source.server, policy)
    if source.type == "http":
        from vault.connectors import http

        url = http_url(source.server)
        header = http.authorization_header(credential.auth, username, password)
        return http.attempt_get(
            url, destination_of(source, policy, deadline), tls=source.tls, ca_pem=source.ca_pem,
            authorization=header, deadline=deadline, proxy=policy.proxy,
        )  # fmt: skip
    if username is None or password is None:  # validate_data_source refused this already
        raise InvalidInputError(f"a {source.type} data source needs a user name and a secret")
    if source.type == "postgresql":
        from vault.connectors import postgresql

        tester = postgresql.attempt_login
    elif source.type == "sqlserver":
        from vault.connectors import sqlserver

        tester = sqlserver.attempt_login
    else:
        from vault.connectors import mysql

        tester = mysql.attempt_login
    return tester(
        destination_of(source, policy, deadline), tls=source.tls, ca_pem=source.ca_pem,
        database=source.database, username=username, password=password, deadline=deadline,
    )  # fmt: skip


def destination_of(
    source: DataSource, policy: DestinationPolicy, deadline: Deadline | None = None
) -> Destination:
    """The checked destination of a network data source (``resolve_destination``),
    looked up within ``deadline`` if one is given.

    Raises ``DestinationRefused``; the agent passes an admin's policy.
    """
    if source.type == "http":
        parts = urlsplit(http_url(source.server))
        host, port = parse_host_port(parts.netloc, DEFAULT_PORTS[parts.scheme])
    else:
        host, port = parse_host_port(source.server, DEFAULT_PORTS[source.type])
    return resolve_destination(host, port, policy, deadline)


def open_session(source: DataSource, credential: ConnectionCredential, timeout: float) -> Any:
    """A live driver connection (psycopg, PyMySQL or python-tds) for a gateway job, made
    exactly as a test connects: the same TLS policy, SCRAM only, the password
    itself only to a verified server.  Jobs may reach any destination.

    Raises ``InvalidInputError`` for a type that is not a database server and
    ``DataSourceError`` (with the reason code) when the connection fails.
    """
    validate_data_source(source, credential)
    if source.type not in ("postgresql", "mysql", "sqlserver") or credential.username is None:
        raise InvalidInputError(
            f"a {source.type} data source has no session to open; use the login"
        )
    password = _secret_text(credential)
    if source.type == "postgresql":
        from vault.connectors import postgresql as driver
    elif source.type == "sqlserver":
        from vault.connectors import sqlserver as driver  # type: ignore[no-redef]
    else:
        from vault.connectors import mysql as driver  # type: ignore[no-redef]
    try:
        destination = destination_of(source, DestinationPolicy().for_admin())
        return driver.open_connection(
            destination, tls=source.tls, ca_pem=source.ca_pem, database=source.database,
            username=credential.username, password=password, timeout=timeout,
        )  # fmt: skip
    except DestinationRefused as refused:
        reason, text = refused.result.reason, refused.result.detail
    except Exception as e:
        reason, text = driver.classify(e), str(e) or type(e).__name__
    detail = redact_message(text, _secret_forms(credential.username, password))
    # Not chained: the driver's own exception holds its unredacted text.
    raise DataSourceError(reason, f"{source.server}: {SUMMARIES[reason]} ({detail})") from None


def redact_message(message: str, secrets: Iterable[str]) -> str:
    """Make a driver message fit for a person: one line, short, no secret text.

    Every occurrence of each non-empty string in ``secrets`` becomes
    ``<redacted>``, in one pass over the original text: a replacement is never
    searched again, so a secret that is part of ``<redacted>`` cannot garble
    the result into something that spells it.  Whitespace inside a secret
    matches any whitespace (a driver may wrap a line in it).  A message holding
    a secret shorter than ``MIN_REDACTABLE_CHARS`` is withheld whole: the gaps
    around short redactions would spell it.  This is defence in depth, the
    drivers are not expected to echo a password.
    """
    words = {tuple(s.split()) for s in secrets if s and not s.isspace()}
    patterns = sorted((r"\s+".join(map(re.escape, w)) for w in words), key=len, reverse=True)
    if patterns:
        finder = re.compile("|".join(patterns))
        if any(len(found.group()) < MIN_REDACTABLE_CHARS for found in finder.finditer(message)):
            return WITHHELD
        message = finder.sub(REDACTED, message)
    one_line = " ".join(message.split())
    if len(one_line) > MAX_MESSAGE_CHARS:
        one_line = one_line[: MAX_MESSAGE_CHARS - 3] + "..."
    return one_line


def parse_host_port(server: str, default_port: int) -> tuple[str, int]:
    """Split ``HOST[:PORT]`` or ``[IPV6][:PORT]``; raise ``InvalidInputError`` if malformed."""
    _check_server_text(server)
    if "@" in server:
        raise InvalidInputError(
            "the server must not contain a user name or password; enter them in the credential"
        )
    if server.startswith("["):
        host, sep, rest = server[1:].partition("]")
        if not sep or not _is_ipv6(host) or (rest and not rest.startswith(":")):
            raise InvalidInputError("the server has a malformed [IPv6] address")
        port_text = rest[1:] if rest else None
    elif server.count(":") > 1:
        if not _is_ipv6(server):
            raise InvalidInputError("the server is malformed; write an IPv6 address as [ADDR]:PORT")
        host, port_text = server, None  # a bare IPv6 address takes no port
    else:
        host, sep, port_text_or_empty = server.partition(":")
        port_text = port_text_or_empty if sep else None
        if not _HOST_NAME.fullmatch(host):
            raise InvalidInputError("the server host name is malformed")
    if port_text is None:
        return host, default_port
    if not _PORT.fullmatch(port_text) or not 1 <= int(port_text) <= 65535:
        raise InvalidInputError("the server port must be a number from 1 to 65535")
    return host, int(port_text)


def http_url(server: str) -> str:
    """Return the URL for an http ``server`` (a URL, or ``HOST[:PORT]`` meaning https)."""
    _check_server_text(server)
    if "://" not in server:
        server = f"https://{server}"
    try:
        parts = urlsplit(server)
    except ValueError as e:
        raise InvalidInputError("the server URL is malformed") from e
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError("the server URL must start with http:// or https://")
    if not parts.netloc:
        raise InvalidInputError("the server URL has no host")
    parse_host_port(parts.netloc, DEFAULT_PORTS[parts.scheme])
    return parts._replace(fragment="").geturl()


def _check_server_text(server: str) -> None:
    if not server:
        raise InvalidInputError("the server is empty")
    if len(server) > MAX_SERVER_CHARS:
        raise InvalidInputError(f"the server is longer than {MAX_SERVER_CHARS} characters")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in server):
        raise InvalidInputError("the server contains spaces or control characters")


def _check_http_tls(url: str, source: DataSource, credential: ConnectionCredential) -> None:
    """An http:// URL has no TLS (mode disable; legacy rows too); an https:// URL
    needs a mode.  Basic and Bearer send the secret itself, so a credential with
    one goes only to a verified server (T-CN-1), never over http:// or require."""
    plain = url.startswith("http://")
    if plain and source.tls not in ("disable", "prefer"):
        raise InvalidInputError("an http:// URL has no TLS: use TLS mode disable, or https://")
    if not plain and source.tls == "disable":
        raise InvalidInputError("an https:// URL needs a TLS mode other than disable")
    if credential.auth != "anonymous" and (plain or source.tls == "require"):
        raise InvalidInputError(
            "HTTP Basic and Bearer send the secret itself, so only to a server whose"
            " certificate is verified: use https:// with TLS mode verify-full or verify-ca"
        )


def _check_sqlserver_tls(source: DataSource) -> None:
    """A SQL Server login sends the password itself (``vault.connectors.sqlserver``),
    so only to a verified server (T-CN-1): no require, no disable."""
    if source.tls not in VERIFYING_TLS_MODES:
        raise InvalidInputError(
            "a SQL Server login sends the password itself, so only to a server whose"
            " certificate is verified: use TLS mode verify-full, or verify-ca with the"
            " server's CA (or its own certificate) as --tls-ca"
        )


def _check_sqlite_path(path: str) -> None:
    # Spaces are fine in a file name; control and invisible characters are not.
    if any(unicodedata.category(ch).startswith("C") for ch in path):
        raise InvalidInputError("the SQLite path contains control characters")
    if not path or len(path) > MAX_SERVER_CHARS or not PurePosixPath(path).is_absolute():
        raise InvalidInputError("the SQLite server must be the absolute path of the database file")


def _check_database_name(database: str | None) -> None:
    if database is None:
        return
    if not database or len(database) > MAX_DATABASE_CHARS or not database.isprintable():
        raise InvalidInputError("the database name is empty, too long or has control characters")


def _require_auth(credential: ConnectionCredential, auth: str, source_type: str) -> None:
    if credential.auth != auth:
        raise InvalidInputError(f"a {source_type} data source takes auth {auth} only")


def _secret_text(credential: ConnectionCredential) -> str:
    if not credential.secret:
        raise InvalidInputError(f"auth {credential.auth} needs a secret")
    check_login_shape(credential.auth, credential.username, credential.secret)
    return credential.secret.reveal_text()


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _check_bearer_token(token: str) -> None:
    if not _BEARER_TOKEN.fullmatch(token):
        raise InvalidInputError("an HTTP key must be a token of letters, digits and -._~+/=")


def _secret_forms(username: str | None, password: str | None) -> list[str]:
    """The forms of the password a message could carry: as typed, escaped, HTTP Basic."""
    if password is None:
        return []
    libpq_quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    basic = base64.b64encode(f"{username or ''}:{password}".encode()).decode("ascii")
    return [password, libpq_quoted, repr(password)[1:-1], basic]
